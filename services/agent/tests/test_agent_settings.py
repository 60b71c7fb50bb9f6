import pytest
from pydantic import ValidationError

from voicebus_agent.settings import AgentSettings
from voicebus_agent.turns import DEFAULT_BACKCHANNELS


def test_barge_in_and_keypad_defaults() -> None:
    settings = AgentSettings()
    assert settings.backchannel_words == DEFAULT_BACKCHANNELS
    assert (settings.backchannel_max_words, settings.backchannel_max_ms) == (2, 1200)
    assert settings.dtmf_timeout_ms == 2000


def test_backchannels_are_comma_separated_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_AGENT_BACKCHANNEL_WORDS", "uh-huh, got it ,,oui")
    assert AgentSettings().backchannel_words == ("uh-huh", "got it", "oui")
    monkeypatch.setenv("VOICEBUS_AGENT_BACKCHANNEL_WORDS", "")
    assert AgentSettings().backchannel_words == ()


def test_a_backchannel_without_words_is_refused_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_AGENT_BACKCHANNEL_WORDS", "yeah,...")
    with pytest.raises(ValidationError, match="a backchannel is made of words"):
        AgentSettings()
