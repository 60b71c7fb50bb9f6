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


class SpeechSynthesizer(Protocol):
    """Turns text into speech, streaming the audio as it is produced."""

    def synthesize(self, text: str, *, voice: str) -> AsyncIterator[PcmChunk]:
        """Speak `text` with `voice`; the first chunk comes before the whole text is synthesized.

        Closing the iterator early stops the synthesis.
        """
        ...


class CallRoutes(Protocol):
    """Where a live call's audio goes: the gateway replica holding its socket, and the format."""

    async def lookup(self, call_id: str) -> CallRoute | None:
        """The call's route, or None if the call is unknown (never started, or already ended)."""
        ...
