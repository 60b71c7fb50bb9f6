"""Barge-in: whether what the caller said over the agent's reply interrupts it.

The gateway pauses the agent's audio the moment the caller starts speaking, and the reply waits
there until the caller's turn is transcribed and settled here. A backchannel ("uh-huh", "got it")
or a sound with no words in it (a cough, a door) is no interruption: the reply resumes. Anything
else is: the reply is cancelled, the agent keeps in its history only what the caller heard of it,
and answers the new turn. Plain Python: no bus, no store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from voicebus_contracts import FinalTranscript, ReplyPaused

DEFAULT_BACKCHANNELS: tuple[str, ...] = (
    "uh-huh",
    "uh huh",
    "mhm",
    "mm-hmm",
    "mm hmm",
    "mmhmm",
    "hmm",
    "mm",
    "yeah",
    "yep",
    "yes",
    "okay",
    "ok",
    "alright",
    "all right",
    "right",
    "sure",
    "got it",
    "i see",
)
"""What callers say to show they are listening, as speech recognizers write it."""

_WORD = re.compile(r"[\w']+(?:-[\w']+)*")


def words_of(text: str) -> list[str]:
    """A transcript's words, lower-cased, without punctuation: "Uh-huh, yeah." -> uh-huh, yeah."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Backchannels:
    """What counts as a backchannel: nothing but the given words and phrases, back to back, in
    at most `max_words` words and `max_ms` of speech (when the duration is known)."""

    phrases: frozenset[tuple[str, ...]]
    max_words: int
    max_ms: int

    @classmethod
    def of(cls, phrases: Iterable[str], *, max_words: int, max_ms: int) -> Backchannels:
        """From phrases as written ("uh-huh", "got it"), read with the transcript's rules."""
        return cls(
            phrases=frozenset(words for p in phrases if (words := tuple(words_of(p)))),
            max_words=max_words,
            max_ms=max_ms,
        )

    def match(self, words: Sequence[str], *, duration_ms: int | None) -> bool:
        if not words or len(words) > self.max_words:
            return False
        if duration_ms is not None and duration_ms > self.max_ms:
            return False
        # covered[end]: words[:end] is a run of known phrases ("okay got it" = okay + got it).
        covered = [True] + [False] * len(words)
        for end in range(1, len(words) + 1):
            covered[end] = any(
                covered[start] and tuple(words[start:end]) in self.phrases for start in range(end)
            )
        return covered[-1]


def heard_text(sentences: Sequence[str], *, sentence: int, fraction: float) -> str:
    """What the caller heard of a reply paused `fraction` of the way through sentence `sentence`:
    the sentences before it whole, then that share of its words (rounded half up)."""
    heard = list(sentences[:sentence])
    if sentence < len(sentences):
        words = sentences[sentence].split()
        heard.append(" ".join(words[: math.floor(fraction * len(words) + 0.5)]))
    return " ".join(part for part in heard if part)


@dataclass(frozen=True)
class PausedReply:
    """A reply the caller is speaking over: where it was paused, and what it says."""

    pause: ReplyPaused
    sentences: Sequence[str]
    """The reply's text chunks by seq, as sent to be spoken."""


@dataclass(frozen=True)
class Answer:
    """No reply was paused: the turn is answered as usual (one with no words is not)."""


@dataclass(frozen=True)
class Resume:
    """Not an interruption: the reply carries on, and the sound is no turn of the conversation."""

    pause: ReplyPaused
    why: Literal["backchannel", "no words"]


@dataclass(frozen=True)
class Interrupt:
    """The caller took the turn: the reply stops where they cut in, and the turn is answered."""

    pause: ReplyPaused
    heard_text: str
    """What the caller heard of the reply: all the agent is left to have said."""


def settle(
    transcript: FinalTranscript, paused: PausedReply | None, *, backchannels: Backchannels
) -> Answer | Resume | Interrupt:
    """What the caller's finished turn means for the reply they spoke over, if any."""
    if paused is None:
        return Answer()
    words = words_of(transcript.text)
    if not words:
        return Resume(pause=paused.pause, why="no words")
    if backchannels.match(words, duration_ms=transcript.duration_ms):
        return Resume(pause=paused.pause, why="backchannel")
    heard = heard_text(
        paused.sentences, sentence=paused.pause.sentence, fraction=paused.pause.fraction
    )
    return Interrupt(pause=paused.pause, heard_text=heard)
