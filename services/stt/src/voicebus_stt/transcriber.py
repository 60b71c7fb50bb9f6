"""The STT core: an utterance in, its final transcript out.

A turn in which the recognizer heard no words (noise, a cough) still gets a FinalTranscript,
with empty text: the turn's latency chain closes and analytics sees the turn, while the agent
ignores empty text and does not reply.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from voicebus_audio import resample, to_mono_pcm16
from voicebus_contracts import MAX_TEXT_CHARS, SPEECH_16K, FinalTranscript, Utterance
from voicebus_stt.ports import SpeechRecognizer


def speech_samples(utterance: Utterance) -> npt.NDArray[np.float32]:
    """The utterance's audio as mono float32 samples in [-1, 1] at 16 kHz, whatever it came as."""
    fmt = utterance.format
    samples = resample(
        to_mono_pcm16(utterance.audio, fmt),
        from_rate=fmt.sample_rate,
        to_rate=SPEECH_16K.sample_rate,
    )
    return samples.astype(np.float32) / 32768.0


class Transcriber:
    """Transcribes utterances on one worker thread, so the event loop (consumer, heartbeat)
    keeps running while the CPU-bound recognizer works, and one utterance runs at a time."""

    def __init__(self, *, recognizer: SpeechRecognizer) -> None:
        self._recognizer = recognizer
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-recognizer")

    async def transcribe(self, utterance: Utterance) -> FinalTranscript:
        audio = speech_samples(utterance)
        loop = asyncio.get_running_loop()
        heard = await loop.run_in_executor(self._worker, self._recognizer.transcribe, audio)
        return FinalTranscript(
            turn_id=utterance.turn_id,
            text=heard.text.strip()[:MAX_TEXT_CHARS],
            language=heard.language,
        )

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
