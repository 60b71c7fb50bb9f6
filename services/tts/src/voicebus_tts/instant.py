"""A synthesizer that answers at once with a quiet tone: for benchmarks and load tests only.

It starts no engine and says no words: each text is a 440 Hz tone lasting as long as the text
would take to say, so the gateway paces and plays it like speech, and TTS resamples and cuts it up
like eSpeak NG's (same sample rate). With it, what a turn costs is the platform's own overhead.
Never use it for real calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt

from voicebus_tts.ports import PcmChunk, Sentence

SAMPLE_RATE = 22_050
"""eSpeak NG's rate, so the instant path resamples exactly as the real one does."""
TONE_HZ = 440.0
AMPLITUDE = 2_000
"""About -24 dBFS: clearly audible, never loud."""
MAX_TONE_MS = 10_000
"""The longest tone one text chunk gets, however long the text."""
FADE_MS = 10
"""The tone fades in and out, so sentences join without a click, as speech starts and ends
in silence."""


def tone(duration_ms: int) -> npt.NDArray[np.int16]:
    """`duration_ms` of the quiet 440 Hz tone, faded in and out."""
    count = SAMPLE_RATE * duration_ms // 1000
    index = np.arange(count)
    fade = np.minimum(1.0, np.minimum(index, count - 1 - index) / (SAMPLE_RATE * FADE_MS / 1000))
    wave = AMPLITUDE * fade * np.sin(2 * np.pi * TONE_HZ * index / SAMPLE_RATE)
    return wave.astype(np.int16)


class InstantSynthesizer:
    """SpeechSynthesizer that speaks any text as a tone of `ms_per_char` per character
    (leading and trailing blanks aside, at most MAX_TONE_MS), in one chunk, at once."""

    def __init__(self, *, ms_per_char: int) -> None:
        self._ms_per_char = ms_per_char

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        text = sentence.text
        duration_ms = min(len(text.strip()) * self._ms_per_char, MAX_TONE_MS)
        if duration_ms:
            yield PcmChunk(samples=tone(duration_ms), sample_rate=SAMPLE_RATE)
