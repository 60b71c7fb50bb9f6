"""Agent service settings (env prefix VOICEBUS_AGENT_)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voicebus_agent.turns import DEFAULT_BACKCHANNELS, words_of


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_AGENT_", extra="ignore")

    greeting: str = "Hello! You are talking to the voicebus demo agent. How can I help you today?"
    """What the agent says first, as soon as a call starts."""
    history_ttl_s: int = Field(default=24 * 3600, gt=0)
    """How long a call's conversation history stays in Redis after its last message."""
    backchannel_words: Annotated[tuple[str, ...], NoDecode] = DEFAULT_BACKCHANNELS
    """Words and short phrases that, said over the agent's reply and nothing else, only show the
    caller is listening: the reply resumes (comma-separated in the environment; empty: every
    worded sound interrupts)."""
    backchannel_max_words: int = Field(default=2, ge=1)
    """A backchannel has at most this many words; a longer turn interrupts, whatever its words."""
    backchannel_max_ms: int = Field(default=1200, ge=0)
    """A backchannel lasts at most this long, when the transcript says how long the caller spoke;
    a longer turn interrupts, whatever its words."""
    unfinished_turn_wait_ms: int = Field(default=1000, ge=0)
    """A turn that trails off ("and...", "so I want to") is answered only after the caller has
    stayed quiet this much longer; if they speak again, their next words join it."""
    dtmf_timeout_ms: int = Field(default=2000, gt=0)
    """Keys typed without `#` are submitted as the caller's turn after this pause in the typing."""

    @field_validator("backchannel_words", mode="before")
    @classmethod
    def _split_backchannels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(phrase.strip() for phrase in value.split(",") if phrase.strip())
        return value

    @field_validator("backchannel_words")
    @classmethod
    def _backchannels_have_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if wordless := [phrase for phrase in value if not words_of(phrase)]:
            raise ValueError(f"a backchannel is made of words, got {wordless!r}")
        return value
