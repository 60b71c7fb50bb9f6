"""The OpenAI speech provider: the real openai SDK against a local server speaking OpenAI's
speech endpoint (https://platform.openai.com/docs/api-reference/audio/createSpeech)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_devstack.fake_openai import FakeOpenAI, FakeVoice
from voicebus_tts.openai_speech import SAMPLE_RATE, OpenAiSpeechError, OpenAiSynthesizer
from voicebus_tts.pcm import Linear16Decoder
from voicebus_tts.ports import PcmChunk, Sentence, SpeechSynthesizer

TEXT = "Hello there, how can I help you today?"
LONG_TEXT = "This sentence goes on and on, so that its speech takes a while to send. " * 4


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def synthesizer(fake: FakeOpenAI, **options: str) -> SpeechSynthesizer:
    return OpenAiSynthesizer(
        options.pop("api_key", fake.api_key), base_url=fake.base_url, **options
    )


async def spoken(synthesizer: SpeechSynthesizer, text: str) -> list[PcmChunk]:
    sentence = Sentence(text, "r-1", last=True)
    return [chunk async for chunk in synthesizer.synthesize(sentence, voice="coral")]


def tone(text: str) -> npt.NDArray[np.int16]:
    """What the fake says for `text`."""
    return np.frombuffer(FakeVoice().tone(text, SAMPLE_RATE), dtype="<i2").astype(np.int16)


async def test_a_sentence_streams_in_chunks_of_24k_speech_with_the_chosen_model_and_voice(
    fake: FakeOpenAI,
) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)

    chunks = await spoken(synthesizer(fake, model="tts-1"), TEXT)

    assert len(chunks) > 1
    assert {chunk.sample_rate for chunk in chunks} == {SAMPLE_RATE}
    samples = np.concatenate([chunk.samples for chunk in chunks])
    assert len(samples) == SAMPLE_RATE * len(TEXT) * 60 // 1000
    assert np.array_equal(samples, tone(TEXT))
    [speech] = fake.speeches
    assert speech.body == {
        "model": "tts-1",
        "voice": "coral",
        "input": TEXT,
        "response_format": "pcm",
    }


async def test_the_default_model_is_gpt_4o_mini_tts(fake: FakeOpenAI) -> None:
    await spoken(synthesizer(fake), "Hi.")

    assert fake.speeches[0].body["model"] == "gpt-4o-mini-tts"


async def test_the_first_audio_comes_before_the_sentence_is_all_sent(fake: FakeOpenAI) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)
    stream = synthesizer(fake).synthesize(Sentence(LONG_TEXT, "r-1", last=True), voice="coral")

    first = await anext(stream)

    [speech] = fake.speeches
    assert first.samples.size > 0
    assert not speech.ended.is_set()
    assert speech.sent_bytes < speech.audio_bytes
    await stream.aclose()  # type: ignore[attr-defined]


async def test_closing_the_stream_early_stops_the_download(fake: FakeOpenAI) -> None:
    fake.voice = FakeVoice(piece_delay_s=0.01)  # about 1.2 s to send it all
    stream = synthesizer(fake).synthesize(Sentence(LONG_TEXT, "r-1", last=True), voice="coral")
    await anext(stream)

    await stream.aclose()  # type: ignore[attr-defined]

    [speech] = fake.speeches
    await asyncio.wait_for(speech.ended.wait(), timeout=5)  # the fake saw the client hang up
    assert speech.sent_bytes < speech.audio_bytes / 2


async def test_samples_split_across_network_pieces_are_put_back_together(
    fake: FakeOpenAI,
) -> None:
    fake.voice = FakeVoice(piece_bytes=4_801, piece_delay_s=0.01)  # every piece ends mid-sample

    chunks = await spoken(synthesizer(fake), TEXT)

    assert len(chunks) > 1
    assert np.array_equal(np.concatenate([chunk.samples for chunk in chunks]), tone(TEXT))


def test_a_sample_split_anywhere_is_decoded_whole() -> None:
    samples = np.array([1, -2, 300, -32768, 32767, 0, -300], dtype=np.int16)
    data = samples.astype("<i2").tobytes()
    decoder = Linear16Decoder()

    pieces = [data[0:1], data[1:2], data[2:5], b"", data[5:6], data[6:13], data[13:]]
    decoded = [decoder.samples(piece) for piece in pieces]

    assert [len(d) for d in decoded] == [0, 1, 1, 0, 1, 3, 1]
    assert np.array_equal(np.concatenate(decoded), samples)


async def test_a_wrong_key_is_a_clear_error(fake: FakeOpenAI) -> None:
    with pytest.raises(OpenAiSpeechError, match=r"OPENAI_API_KEY.*401.*Incorrect API key"):
        await spoken(synthesizer(fake, api_key="sk-wrong"), TEXT)

    assert fake.speeches == []


async def test_blank_text_is_not_sent(fake: FakeOpenAI) -> None:
    assert await spoken(synthesizer(fake), " \n") == []

    assert fake.speeches == []


def test_an_empty_key_is_refused_naming_openai_api_key() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAiSynthesizer("")
