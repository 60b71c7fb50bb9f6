import pytest

from voicebus_agent.turns import (
    DEFAULT_BACKCHANNELS,
    Answer,
    Backchannels,
    Interrupt,
    PausedReply,
    Resume,
    heard_text,
    settle,
    words_of,
)
from voicebus_contracts import FinalTranscript, ReplyPaused

BACKCHANNELS = Backchannels.of(DEFAULT_BACKCHANNELS, max_words=2, max_ms=1200)
SAID = ("Your table is booked.", "It is for two people at eight.", "")
PAUSE = ReplyPaused(reply_id="CA1:t1:reply", turn_id="CA1:t2", sentence=1, fraction=0.5)


def over_the_reply(text: str, duration_ms: int | None = None) -> Answer | Resume | Interrupt:
    transcript = FinalTranscript(turn_id="CA1:t2", text=text, duration_ms=duration_ms)
    paused = PausedReply(pause=PAUSE, sentences=SAID)
    return settle(transcript, paused, backchannels=BACKCHANNELS)


def test_words_are_lower_cased_without_punctuation_hyphenated_words_kept_whole() -> None:
    assert words_of("Uh-huh, YEAH... don't!") == ["uh-huh", "yeah", "don't"]
    assert words_of(" ... ?! ") == []


@pytest.mark.parametrize(
    "said", ["Uh-huh.", "Mhm", "yeah", "Yeah, yeah.", "OK.", "Okay.", "Right.", "Got it.", "sure"]
)
def test_a_backchannel_over_the_reply_lets_it_resume(said: str) -> None:
    assert over_the_reply(said, duration_ms=600) == Resume(pause=PAUSE, why="backchannel")


@pytest.mark.parametrize("said", ["", "   ", "...", "?"])
def test_a_sound_with_no_words_lets_the_reply_resume(said: str) -> None:
    assert over_the_reply(said) == Resume(pause=PAUSE, why="no words")


def test_a_backchannel_of_unknown_duration_is_bounded_by_its_words_alone() -> None:
    assert over_the_reply("uh-huh", duration_ms=None) == Resume(pause=PAUSE, why="backchannel")


@pytest.mark.parametrize(
    ("said", "duration_ms"),
    [
        ("yeah", 1201),  # too long to be an acknowledgement
        ("okay got it", 900),  # three words, one more than the bound
        ("yes please", 700),  # not only backchannel words
        ("no", 300),
        ("it", 300),  # a word of a phrase is not the phrase
        ("wait, stop", 800),
    ],
)
def test_anything_else_interrupts(said: str, duration_ms: int) -> None:
    assert isinstance(over_the_reply(said, duration_ms=duration_ms), Interrupt)


def test_phrases_chain_up_to_the_word_bound() -> None:
    roomy = Backchannels.of(["okay", "got it"], max_words=3, max_ms=2000)
    assert roomy.match(words_of("Okay, got it."), duration_ms=1500)
    assert roomy.match(words_of("got it okay"), duration_ms=None)
    assert not roomy.match(words_of("got okay it"), duration_ms=None)
    assert not roomy.match([], duration_ms=None)


def test_an_interruption_keeps_what_the_caller_heard() -> None:
    assert over_the_reply("Actually make it four people.", duration_ms=1800) == Interrupt(
        pause=PAUSE, heard_text="Your table is booked. It is for two"
    )


def test_with_no_reply_paused_the_turn_is_answered_as_usual() -> None:
    for text in ("uh-huh", "Book a table.", ""):
        transcript = FinalTranscript(turn_id="CA1:t2", text=text)
        assert settle(transcript, None, backchannels=BACKCHANNELS) == Answer()


@pytest.mark.parametrize(
    ("sentence", "fraction", "heard"),
    [
        (0, 0.0, ""),
        (0, 0.5, "Your table"),
        (0, 1.0, "Your table is booked."),
        (1, 0.0, "Your table is booked."),
        (1, 0.5, "Your table is booked. It is for two"),  # 7 words: 3.5 rounds up to 4
        (1, 0.2, "Your table is booked. It"),  # 1.4 rounds down
        (1, 1.0, "Your table is booked. It is for two people at eight."),
        (2, 0.5, "Your table is booked. It is for two people at eight."),  # an empty chunk
        (5, 0.5, "Your table is booked. It is for two people at eight."),  # past the text
    ],
)
def test_heard_text_is_the_sentences_before_whole_and_a_share_of_the_one_paused(
    sentence: int, fraction: float, heard: str
) -> None:
    assert heard_text(SAID, sentence=sentence, fraction=fraction) == heard


def test_nothing_is_heard_of_a_reply_whose_text_is_unknown() -> None:
    assert heard_text((), sentence=1, fraction=0.5) == ""
