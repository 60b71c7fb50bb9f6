"""A synthesizer that answers at once with a quiet tone, for benchmarks and load tests only.

The tone lasts as long as the text would take to say (`ms_per_char`), so the gateway paces and
plays it like speech; with it, what a turn costs is the platform's own overhead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from voicebus_tts.ports import PcmChunk

SAMPLE_RATE = 16_000
TONE_HZ = 440.0
AMPLITUDE = 3_000


class InstantSynthesizer:
    """Speaks any text as a 440 Hz tone of `ms_per_char` per character, in one chunk, at once."""

    def __init__(self, *, ms_per_char: int) -> None:
        self._ms_per_char = ms_per_char

    async def synthesize(self, text: str, *, voice: str) -> AsyncIterator[PcmChunk]:
        samples = len(text) * self._ms_per_char * SAMPLE_RATE // 1000
        if samples:
            t = np.arange(samples) / SAMPLE_RATE
            tone = (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
            yield PcmChunk(samples=tone, sample_rate=SAMPLE_RATE)
