"""The TTS service's ports: what turns text into speech, and where a call's audio must go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voicebus_contracts import CallRoute


@dataclass(frozen=True)
class PcmChunk:
    """A piece of synthesized speech: mono signed 16-bit samples at `sample_rate`."""

    samples: npt.NDArray[np.int16]
    sample_rate: int


@dataclass(frozen=True)
class Sentence:
    """A sentence of a reply, to be spoken: its text, and where it stands in its reply, for
    providers that keep a reply's sentences in one context (Cartesia's continuations), so
    their prosody flows across sentences."""

    text: str
    reply_id: str
    last: bool
    """No more of the reply follows: a provider may close the reply's context."""


class SpeechSynthesizer(Protocol):
    """Turns text into speech, streaming the audio as it is produced."""

    def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        """Speak `sentence` with `voice`; the first chunk comes before the whole sentence is
        synthesized. Closing the iterator early stops the synthesis."""
        ...


class CallRoutes(Protocol):
    """Where a live call's audio goes: the gateway replica holding its socket, and the format."""

    async def lookup(self, call_id: str) -> CallRoute | None:
        """The call's route, or None if the call is unknown (never started, or already ended)."""
        ...
