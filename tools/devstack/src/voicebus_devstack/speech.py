"""Synthesized caller speech for tests and benchmarks: eSpeak NG through the TTS adapter."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebus_audio import pcm16_to_mulaw, resample
from voicebus_contracts import SPEECH_16K, TELEPHONE
from voicebus_tts.espeak import synthesize_pcm

DEFAULT_VOICE = "en-us"


def speech_pcm16(
    text: str, *, sample_rate: int = SPEECH_16K.sample_rate, voice: str = DEFAULT_VOICE
) -> npt.NDArray[np.int16]:
    """`text` spoken, as mono PCM16 samples at `sample_rate`."""
    samples, rate = synthesize_pcm(text, voice)
    return resample(samples, from_rate=rate, to_rate=sample_rate)


def telephone_speech(text: str, *, voice: str = DEFAULT_VOICE) -> bytes:
    """`text` spoken as a phone line carries it: mu-law at 8 kHz."""
    return pcm16_to_mulaw(speech_pcm16(text, sample_rate=TELEPHONE.sample_rate, voice=voice))
