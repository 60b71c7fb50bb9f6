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


def speech_pcm16(utterance: Utterance) -> npt.NDArray[np.int16]:
    """The utterance's audio as mono PCM16 at 16 kHz, whatever it came as."""
    fmt = utterance.format
    return resample(
        to_mono_pcm16(utterance.audio, fmt),
        from_rate=fmt.sample_rate,
        to_rate=SPEECH_16K.sample_rate,
    )


def speech_samples(utterance: Utterance) -> npt.NDArray[np.float32]:
    """The utterance's audio as mono float32 samples in [-1, 1] at 16 kHz, whatever it came as."""
    return speech_pcm16(utterance).astype(np.float32) / 32768.0


def final_transcript(utterance: Utterance, *, text: str, language: str | None) -> FinalTranscript:
    """What was heard in `utterance`, as its turn's transcript: stripped and bounded in length."""
    return FinalTranscript(
        turn_id=utterance.turn_id,
        text=text.strip()[:MAX_TEXT_CHARS],
        language=language,
        duration_ms=utterance.duration_ms,
    )


class Transcriber:
    """UtteranceTranscriber for a local SpeechRecognizer: transcribes on one worker thread, so
    the event loop (consumer, heartbeat) keeps running while the CPU-bound recognizer works, and
    one utterance runs at a time."""

    def __init__(self, *, recognizer: SpeechRecognizer) -> None:
        self._recognizer = recognizer
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-recognizer")

    async def transcribe(self, utterance: Utterance) -> FinalTranscript:
        audio = speech_samples(utterance)
        loop = asyncio.get_running_loop()
        heard = await loop.run_in_executor(self._worker, self._recognizer.transcribe, audio)
        return final_transcript(utterance, text=heard.text, language=heard.language)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
