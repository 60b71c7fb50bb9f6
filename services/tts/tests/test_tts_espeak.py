from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_tts.espeak import EspeakSynthesizer, synthesize_pcm
from voicebus_tts.ports import Sentence

SENTENCE = "Hello, thanks for calling. How can I help you today?"
LONG_SENTENCE = (
    "This is a much longer sentence, with several clauses and a little detail, "
    "so that the engine has to fill many buffers before it reaches the end of it."
)


def assert_same_speech(actual: npt.NDArray[np.int16], expected: npt.NDArray[np.int16]) -> None:
    """Same words spoken: eSpeak NG adds random noise and timing jitter to every synthesis, so
    compare durations and the loudness contour of the first second (before the jitter adds up)."""

    def contour(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
        frames = samples[: len(samples) // 220 * 220].astype(np.float64).reshape(-1, 220)
        loudness: npt.NDArray[np.float64] = np.sqrt(np.mean(frames**2, axis=1))
        return loudness

    assert abs(len(actual) - len(expected)) < 0.01 * len(expected)
    a, e = contour(actual), contour(expected)
    n = min(len(a), len(e), 100)
    assert np.corrcoef(a[:n], e[:n])[0, 1] > 0.95


async def spoken(text: str) -> tuple[list[npt.NDArray[np.int16]], set[int]]:
    chunks = [
        chunk
        async for chunk in EspeakSynthesizer().synthesize(
            Sentence(text, "r", last=True), voice="en-us"
        )
    ]
    return [c.samples for c in chunks], {c.sample_rate for c in chunks}


def test_a_sentence_is_audible_speech_of_plausible_length() -> None:
    samples, rate = synthesize_pcm(SENTENCE)

    assert rate == 22_050
    assert samples.dtype == np.int16
    assert 1.5 < len(samples) / rate < 6.0
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300


def test_a_faster_rate_speaks_the_same_words_in_less_time() -> None:
    slow, _ = synthesize_pcm(SENTENCE, rate_wpm=140)
    fast, _ = synthesize_pcm(SENTENCE, rate_wpm=280)

    assert len(fast) < 0.8 * len(slow)


async def test_a_long_sentence_streams_in_many_chunks_that_add_up_to_the_whole() -> None:
    chunks, rates = await spoken(LONG_SENTENCE)
    whole, rate = synthesize_pcm(LONG_SENTENCE)

    assert rates == {rate}
    assert len(chunks) >= 10
    assert_same_speech(np.concatenate(chunks), whole)


async def test_concurrent_syntheses_do_not_mix_their_audio() -> None:
    texts = [SENTENCE, LONG_SENTENCE, "One, two, three."]
    alone = [synthesize_pcm(text)[0] for text in texts]

    together = await asyncio.gather(*(spoken(text) for text in texts))
    with ThreadPoolExecutor(max_workers=3) as pool:
        from_threads = list(pool.map(lambda text: synthesize_pcm(text)[0], texts))

    for expected, (chunks, _), threaded in zip(alone, together, from_threads, strict=True):
        assert_same_speech(np.concatenate(chunks), expected)
        assert_same_speech(threaded, expected)


async def test_closing_the_stream_early_leaves_the_engine_ready_for_the_next_text() -> None:
    stream = EspeakSynthesizer().synthesize(Sentence(LONG_SENTENCE, "r", last=True), voice="en-us")
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    chunks, _ = await spoken(SENTENCE)
    assert_same_speech(np.concatenate(chunks), synthesize_pcm(SENTENCE)[0])


def test_an_unknown_voice_is_refused() -> None:
    with pytest.raises(ValueError, match="no-such-voice"):
        synthesize_pcm(SENTENCE, "no-such-voice")
