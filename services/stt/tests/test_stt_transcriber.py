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
from voicebus_contracts import (
    MAX_TEXT_CHARS,
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    Envelope,
    PartialTranscript,
    Utterance,
    UtteranceChunk,
    envelope,
)
from voicebus_stt.ports import Transcription
from voicebus_stt.recognition import Recognition, Urgency
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

    sketch = transcribe


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


class ListeningRecognizer:
    """Hears how much audio it was given, and notes every recognition: ("transcribe" or
    "sketch", seconds of audio). Each waits for `gate`, so tests can hold the recognizer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.gate = threading.Event()
        self.gate.set()

    def _hear(self, kind: str, audio: npt.NDArray[np.float32]) -> Transcription:
        self.gate.wait(5)
        seconds = len(audio) / SPEECH_16K.sample_rate
        self.calls.append((kind, seconds))
        return Transcription(text=f"{kind} of {seconds:.1f} s", language="en")

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        return self._hear("transcribe", audio)

    def sketch(self, audio: npt.NDArray[np.float32]) -> Transcription:
        return self._hear("sketch", audio)


SECOND = bytes(2 * SPEECH_16K.sample_rate)
"""One second of PCM16 silence at 16 kHz."""


def _chunk(seq: int, *, paused: bool = False, turn_id: str = "t1") -> Envelope[UtteranceChunk]:
    chunk = UtteranceChunk(turn_id=turn_id, seq=seq, audio=SECOND, format=SPEECH_16K, paused=paused)
    return envelope(chunk, call_id="call-1", producer="media")


def _whole_turn(seconds: int, *, speech_end_ms: int, turn_id: str = "t1") -> Utterance:
    return Utterance(
        turn_id=turn_id,
        audio=SECOND * seconds,
        format=SPEECH_16K,
        duration_ms=seconds * 1000,
        speech_end_ms=speech_end_ms,
    )


class Partials:
    """A PartialSink that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[tuple[Envelope[UtteranceChunk], PartialTranscript]] = []

    async def __call__(self, cause: Envelope[UtteranceChunk], partial: PartialTranscript) -> None:
        self.published.append((cause, partial))

    async def settle(self) -> None:
        for _ in range(50):
            await asyncio.sleep(0.01)


async def test_a_turn_under_way_is_sketched_into_partial_transcripts() -> None:
    recognizer, partials = ListeningRecognizer(), Partials()
    transcriber = Transcriber(recognizer=recognizer, on_partial=partials)

    await transcriber.listen(_chunk(0))
    await partials.settle()
    await transcriber.listen(_chunk(1))
    await partials.settle()

    assert recognizer.calls == [("sketch", 1.0), ("sketch", 2.0)]
    assert [(cause.event.seq, p.text, p.audio_ms) for cause, p in partials.published] == [
        (0, "sketch of 1.0 s", 1000),
        (1, "sketch of 2.0 s", 2000),
    ]
    assert all(p.turn_id == "t1" for _, p in partials.published)
    transcriber.close()


async def test_while_the_recognizer_is_busy_sketches_coalesce_on_the_latest_audio() -> None:
    recognizer, partials = ListeningRecognizer(), Partials()
    transcriber = Transcriber(recognizer=recognizer, on_partial=partials)
    recognizer.gate.clear()

    for seq in range(4):
        await transcriber.listen(_chunk(seq))
        await asyncio.sleep(0.01)
    recognizer.gate.set()
    await partials.settle()

    # The first sketch started on 1 s; the audio that came meanwhile is sketched once, whole.
    assert recognizer.calls == [("sketch", 1.0), ("sketch", 4.0)]
    transcriber.close()


async def test_the_draft_taken_at_the_pause_is_the_final_transcript() -> None:
    recognizer, partials = ListeningRecognizer(), Partials()
    transcriber = Transcriber(recognizer=recognizer, on_partial=partials)

    await transcriber.listen(_chunk(0))
    await transcriber.listen(_chunk(1, paused=True))
    # The utterance is longer (its trailing silence), but its speech ended within the draft.
    final = await transcriber.transcribe(_whole_turn(3, speech_end_ms=1800))

    assert final.text == "transcribe of 2.0 s"  # the draft's
    assert ("transcribe", 3.0) not in recognizer.calls
    transcriber.close()


async def test_speech_after_the_pause_means_the_whole_turn_is_heard_again() -> None:
    recognizer = ListeningRecognizer()
    transcriber = Transcriber(recognizer=recognizer)

    await transcriber.listen(_chunk(0, paused=True))
    await transcriber.listen(_chunk(1))
    final = await transcriber.transcribe(_whole_turn(3, speech_end_ms=2500))

    assert final.text == "transcribe of 3.0 s"
    assert recognizer.calls[-1] == ("transcribe", 3.0)
    transcriber.close()


async def test_a_turn_joined_midway_is_heard_from_its_utterance_alone() -> None:
    recognizer, partials = ListeningRecognizer(), Partials()
    transcriber = Transcriber(recognizer=recognizer, on_partial=partials)

    await transcriber.listen(_chunk(2, paused=True))  # chunks 0 and 1 went to another worker
    final = await transcriber.transcribe(_whole_turn(3, speech_end_ms=2800))

    assert final.text == "transcribe of 3.0 s"
    assert recognizer.calls == [("transcribe", 3.0)]
    assert partials.published == []
    transcriber.close()


async def test_no_partial_transcript_follows_the_final_one() -> None:
    recognizer, partials = ListeningRecognizer(), Partials()
    transcriber = Transcriber(recognizer=recognizer, on_partial=partials)
    recognizer.gate.clear()

    await transcriber.listen(_chunk(0))  # its sketch waits for the recognizer
    final = asyncio.create_task(transcriber.transcribe(_whole_turn(1, speech_end_ms=900)))
    await asyncio.sleep(0.05)
    recognizer.gate.set()
    await final
    await partials.settle()

    assert partials.published == []
    transcriber.close()


async def test_a_final_transcription_goes_before_queued_drafts_and_sketches() -> None:
    recognizer = ListeningRecognizer()
    recognition = Recognition(recognizer)
    second = np.zeros(SPEECH_16K.sample_rate, dtype=np.float32)
    recognizer.gate.clear()

    running = recognition.submit(Urgency.SKETCH, lambda: second)
    await asyncio.sleep(0.05)  # the sketch is on the recognizer, held by the gate
    sketch = recognition.submit(Urgency.SKETCH, lambda: second[:8000])
    draft = recognition.submit(Urgency.DRAFT, lambda: np.tile(second, 2))
    final = asyncio.create_task(recognition.hear(np.tile(second, 3)))
    await asyncio.sleep(0.01)
    recognizer.gate.set()
    await asyncio.gather(running, sketch, draft, final)

    assert recognizer.calls == [
        ("sketch", 1.0),
        ("transcribe", 3.0),
        ("transcribe", 2.0),
        ("sketch", 0.5),
    ]
    recognition.close()
