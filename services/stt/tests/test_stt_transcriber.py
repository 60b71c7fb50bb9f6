"""The STT core: audio formats in, transcripts out, one recognition at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_audio import pcm16_to_mulaw
from voicebus_contracts import MAX_TEXT_CHARS, SPEECH_16K, TELEPHONE, AudioFormat, Utterance
from voicebus_stt.ports import Transcription
from voicebus_stt.transcriber import Transcriber, speech_samples


def _tone(sample_rate: int, seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def _utterance(audio: bytes, fmt: AudioFormat = SPEECH_16K, turn_id: str = "t1") -> Utterance:
    return Utterance(turn_id=turn_id, audio=audio, format=fmt, duration_ms=500)


class OneAtATimeRecognizer:
    """Says `text` after a short think, and notes whether two recognitions ever overlapped."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.overlapped = False
        self.threads: set[str] = set()
        self._busy = threading.Lock()

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        if not self._busy.acquire(blocking=False):
            self.overlapped = True
            return Transcription(text=self.text, language="en")
        try:
            self.threads.add(threading.current_thread().name)
            time.sleep(0.02)
            return Transcription(text=self.text, language="en")
        finally:
            self._busy.release()


def test_pcm16_at_16k_becomes_float_samples_unchanged() -> None:
    tone = _tone(16_000, 0.5)

    samples = speech_samples(_utterance(tone.tobytes()))

    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples, tone / 32768.0, atol=1e-6)


@pytest.mark.parametrize(
    ("fmt", "encode"),
    [
        (TELEPHONE, pcm16_to_mulaw),
        (
            AudioFormat(encoding="pcm16", sample_rate=8_000, channels=2),
            lambda tone: np.repeat(tone, 2).tobytes(),
        ),
    ],
    ids=["mulaw-8k", "pcm16-8k-stereo"],
)
def test_other_formats_are_converted_to_16k_mono(
    fmt: AudioFormat, encode: Callable[[npt.NDArray[np.int16]], bytes]
) -> None:
    tone = _tone(8_000, 0.5)

    samples = speech_samples(_utterance(encode(tone), fmt))

    assert abs(len(samples) - 8_000) <= 2
    assert 0.45 < np.abs(samples).max() < 0.55


async def test_transcript_is_for_the_utterance_turn_and_stripped_and_bounded() -> None:
    transcriber = Transcriber(recognizer=OneAtATimeRecognizer(" " + "la " * MAX_TEXT_CHARS))

    transcript = await transcriber.transcribe(
        _utterance(_tone(16_000, 0.1).tobytes(), turn_id="t7")
    )

    assert transcript.turn_id == "t7"
    assert transcript.text.startswith("la la")
    assert len(transcript.text) == MAX_TEXT_CHARS
    assert transcript.language == "en"
    transcriber.close()


async def test_a_turn_with_no_words_gets_an_empty_transcript() -> None:
    transcriber = Transcriber(recognizer=OneAtATimeRecognizer(""))

    transcript = await transcriber.transcribe(_utterance(bytes(3200)))

    assert transcript.text == ""
    transcriber.close()


async def test_recognizes_off_the_event_loop_one_utterance_at_a_time() -> None:
    recognizer = OneAtATimeRecognizer("hello")
    transcriber = Transcriber(recognizer=recognizer)
    audio = _tone(16_000, 0.1).tobytes()

    transcripts = await asyncio.gather(
        *(transcriber.transcribe(_utterance(audio, turn_id=f"t{i}")) for i in range(4))
    )

    assert [t.turn_id for t in transcripts] == ["t0", "t1", "t2", "t3"]
    assert not recognizer.overlapped
    assert threading.current_thread().name not in recognizer.threads
    transcriber.close()
