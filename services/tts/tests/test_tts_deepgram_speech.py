"""The Deepgram Aura speech provider: the real deepgram SDK against a local server speaking
Deepgram's text-to-speech REST endpoint
(https://developers.deepgram.com/reference/text-to-speech/speak-request)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_devstack.fake_deepgram_speak import FakeDeepgramSpeak
from voicebus_devstack.fake_openai import FakeVoice
from voicebus_tts.deepgram_speech import DeepgramSpeechError, DeepgramSynthesizer
from voicebus_tts.ports import PcmChunk, Sentence, SpeechSynthesizer

VOICE = "aura-2-thalia-en"
TEXT = "Hello there, how can I help you today?"
LONG_TEXT = "This sentence goes on and on, so that its speech takes a while to send. " * 4


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgramSpeak]:
    async with FakeDeepgramSpeak() as server:
        yield server


def synthesizer(
    fake: FakeDeepgramSpeak, *, api_key: str | None = None, sample_rate: int = 24_000
) -> SpeechSynthesizer:
    return DeepgramSynthesizer(
        fake.api_key if api_key is None else api_key,
        base_url=fake.base_url,
        sample_rate=sample_rate,
    )


async def spoken(synthesizer: SpeechSynthesizer, text: str) -> list[PcmChunk]:
    sentence = Sentence(text, "r-1", last=True)
    return [chunk async for chunk in synthesizer.synthesize(sentence, voice=VOICE)]


def tone(text: str, sample_rate: int) -> npt.NDArray[np.int16]:
    """What the fake says for `text`, without a container."""
    return np.frombuffer(FakeVoice().tone(text, sample_rate), dtype="<i2").astype(np.int16)


@pytest.mark.parametrize("sample_rate", [24_000, 16_000])
async def test_a_sentence_streams_in_chunks_of_bare_linear16_at_the_chosen_rate(
    fake: FakeDeepgramSpeak, sample_rate: int
) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)

    chunks = await spoken(synthesizer(fake, sample_rate=sample_rate), TEXT)

    assert len(chunks) > 1
    assert {chunk.sample_rate for chunk in chunks} == {sample_rate}
    samples = np.concatenate([chunk.samples for chunk in chunks])
    assert len(samples) == sample_rate * len(TEXT) * 60 // 1000
    assert np.array_equal(samples, tone(TEXT, sample_rate))  # no WAV header read as samples
    [speech] = fake.speeches
    assert speech.query == {
        "model": VOICE,
        "encoding": "linear16",
        "container": "none",
        "sample_rate": str(sample_rate),
    }
    assert speech.body == {"text": TEXT}


async def test_the_first_audio_comes_before_the_sentence_is_all_sent(
    fake: FakeDeepgramSpeak,
) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)
    stream = synthesizer(fake).synthesize(Sentence(LONG_TEXT, "r-1", last=True), voice=VOICE)

    first = await anext(stream)

    [speech] = fake.speeches
    assert first.samples.size > 0
    assert not speech.ended.is_set()
    assert speech.sent_bytes < speech.audio_bytes
    await stream.aclose()  # type: ignore[attr-defined]


async def test_closing_the_stream_early_stops_the_download(fake: FakeDeepgramSpeak) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)  # about 1.2 s to send it all
    stream = synthesizer(fake).synthesize(Sentence(LONG_TEXT, "r-1", last=True), voice=VOICE)
    await anext(stream)

    await stream.aclose()  # type: ignore[attr-defined]

    [speech] = fake.speeches
    await asyncio.wait_for(speech.ended.wait(), timeout=5)  # the fake saw the client hang up
    assert speech.sent_bytes < speech.audio_bytes / 2


async def test_samples_split_across_network_pieces_are_put_back_together(
    fake: FakeDeepgramSpeak,
) -> None:
    fake.voice = FakeVoice(piece_bytes=3_201, piece_delay_s=0.01)  # every piece ends mid-sample

    chunks = await spoken(synthesizer(fake, sample_rate=16_000), TEXT)

    assert len(chunks) > 1
    samples = np.concatenate([chunk.samples for chunk in chunks])
    assert np.array_equal(samples, tone(TEXT, 16_000))


async def test_a_wrong_key_is_a_clear_error(fake: FakeDeepgramSpeak) -> None:
    with pytest.raises(DeepgramSpeechError, match=r"DEEPGRAM_API_KEY.*401 Invalid credentials"):
        await spoken(synthesizer(fake, api_key="wrong-key"), TEXT)

    assert fake.speeches == []


async def test_blank_text_is_not_sent(fake: FakeDeepgramSpeak) -> None:
    assert await spoken(synthesizer(fake), " \n") == []

    assert fake.speeches == []


def test_an_empty_key_is_refused_naming_deepgram_api_key() -> None:
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramSynthesizer("")


def test_a_rate_deepgram_does_not_offer_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="not 22050"):
        DeepgramSynthesizer("key", sample_rate=22_050)
