"""The Cartesia voice: the real adapter and SDK against a local Cartesia speaking its WebSocket."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import cast

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voicebus_contracts import TELEPHONE, Envelope, OutboundAudioChunk, ReplyTextChunk, envelope
from voicebus_devstack.fake_cartesia import PATH, FakeCartesia
from voicebus_devstack.polling import until
from voicebus_tts.cartesia import DEFAULT_MODEL, CartesiaSpeechError, CartesiaSynthesizer
from voicebus_tts.core import Speaker
from voicebus_tts.ports import PcmChunk, Sentence
from voicebus_tts.voices import Voice

VOICE = "a0e99841-438c-4a64-b679-ae501e7d6091"
RATE = 24_000


@pytest.fixture
async def fake() -> AsyncIterator[FakeCartesia]:
    async with FakeCartesia() as fake:
        yield fake


@pytest.fixture
async def cartesia(fake: FakeCartesia) -> AsyncIterator[CartesiaSynthesizer]:
    synthesizer = CartesiaSynthesizer(fake.api_key, base_url=fake.base_url)
    yield synthesizer
    await synthesizer.aclose()


def speech(synthesizer: CartesiaSynthesizer, sentence: Sentence) -> AsyncGenerator[PcmChunk, None]:
    return cast(AsyncGenerator[PcmChunk, None], synthesizer.synthesize(sentence, voice=VOICE))


async def spoken(synthesizer: CartesiaSynthesizer, sentence: Sentence) -> list[PcmChunk]:
    return [chunk async for chunk in speech(synthesizer, sentence)]


def samples(chunks: list[PcmChunk]) -> int:
    return sum(len(chunk.samples) for chunk in chunks)


def cancels(fake: FakeCartesia) -> list[str]:
    return [message["context_id"] for message in fake.received if message.get("cancel")]


def text_chunk(seq: int, text: str, *, last: bool) -> Envelope[ReplyTextChunk]:
    chunk = ReplyTextChunk(reply_id="r-1", in_reply_to="t-1", seq=seq, text=text, last=last)
    return envelope(chunk, call_id="call-1", producer="agent")


def speak(
    synthesizer: CartesiaSynthesizer,
    reply: Envelope[ReplyTextChunk],
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> AsyncIterator[Envelope[OutboundAudioChunk]]:
    """The reply's audio for a telephone call, as the TTS core makes it."""
    voice = Voice(provider="cartesia", name=VOICE, synthesizer=synthesizer)
    return Speaker(chunk_ms=200).speak(reply, TELEPHONE, voice=voice, cancelled=cancelled)


async def test_a_replys_sentences_go_on_one_context_continuing_until_the_last(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    texts = ["Hello there.", "Thanks for calling.", "How can I help?"]
    for index, text in enumerate(texts):
        await spoken(cartesia, Sentence(text, "reply/7:a", last=index == len(texts) - 1))

    requests = [message for message in fake.received if "transcript" in message]
    assert [(m["transcript"], m["continue"], m.get("flush", False)) for m in requests] == [
        ("Hello there. ", True, False),  # a context's transcripts are joined verbatim
        ("", True, True),  # the flush that marks where the sentence's audio ends
        ("Thanks for calling. ", True, False),
        ("", True, True),
        ("How can I help?", False, False),
    ]
    (context_id,) = {m["context_id"] for m in requests}
    assert re.fullmatch(r"reply-7-a-[0-9]+", context_id)
    for request in requests:
        assert request["model_id"] == DEFAULT_MODEL
        assert request["voice"] == {"mode": "id", "id": VOICE}
        assert request["output_format"] == {
            "container": "raw",
            "encoding": "pcm_s16le",
            "sample_rate": RATE,
        }
    assert [speech.flush_id for speech in fake.spoken] == [1, 2, 3]
    assert fake.connections == 1


async def test_a_sentences_audio_streams_in_several_chunks_at_the_requested_rate(
    fake: FakeCartesia,
) -> None:
    synthesizer = CartesiaSynthesizer(fake.api_key, sample_rate=16_000, base_url=fake.base_url)
    text = "Your appointment is on Tuesday."
    try:
        chunks = await spoken(synthesizer, Sentence(text, "r-1", last=True))
    finally:
        await synthesizer.aclose()

    assert len(chunks) == fake.spoken[0].chunks > 1
    assert {chunk.sample_rate for chunk in chunks} == {16_000}
    assert {chunk.samples.dtype for chunk in chunks} == {np.dtype(np.int16)}
    assert samples(chunks) == fake.spoken[0].samples == fake.samples_for(text, 16_000)
    audio = np.concatenate([chunk.samples for chunk in chunks])
    peak = np.argmax(np.abs(np.fft.rfft(audio))) * 16_000 / len(audio)
    assert peak == pytest.approx(440, abs=5)  # the fake's tone, decoded as it was sent


async def test_audio_is_handed_over_while_the_server_is_still_speaking_and_closing_early_cancels(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    fake.stall_after_chunks = 3
    interrupted = speech(cartesia, Sentence("This sentence gets cut off.", "r-1", last=False))
    streamed = [await anext(interrupted) for _ in range(3)]
    assert samples(streamed) == fake.spoken[0].samples
    assert not fake.spoken[0].complete

    await interrupted.aclose()  # the caller barged in

    with pytest.raises(StopAsyncIteration):
        await anext(interrupted)
    context_id = fake.spoken[0].context_id
    await until(lambda: cancels(fake) == [context_id])
    assert fake.spoken[0].chunks == 3
    assert not fake.spoken[0].complete

    fake.stall_after_chunks = None
    rest = await spoken(cartesia, Sentence("Sorry, go on.", "r-1", last=True))
    assert samples(rest) == fake.samples_for("Sorry, go on.", RATE)  # nothing of the cut one
    assert fake.spoken[1].context_id != context_id  # the cancelled context is not reused


async def test_two_replies_spoken_at_once_do_not_mix(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    long_text = "Let me read you the whole list of opening hours for this week."
    short_text = "One moment."
    long_speech = speech(cartesia, Sentence(long_text, "r-long", last=False))
    long_chunks = [await anext(long_speech)]
    # While the long sentence streams, another call's reply is spoken whole.
    short_chunks = await spoken(cartesia, Sentence(short_text, "r-short", last=True))
    long_chunks += [chunk async for chunk in long_speech]
    long_end = await spoken(cartesia, Sentence("That's all.", "r-long", last=True))

    assert samples(short_chunks) == fake.samples_for(short_text, RATE)
    assert samples(long_chunks) == fake.samples_for(long_text, RATE)
    assert samples(long_end) == fake.samples_for("That's all.", RATE)
    contexts = {speech.transcript.strip(): speech.context_id for speech in fake.spoken}
    assert contexts[long_text] == contexts["That's all."] != contexts[short_text]


async def test_an_empty_last_sentence_closes_the_replys_context(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    await spoken(cartesia, Sentence("Goodbye for now.", "r-1", last=False))
    assert await spoken(cartesia, Sentence("", "r-1", last=True)) == []
    closing = fake.received[-1]
    assert (closing["context_id"], closing["transcript"], closing["continue"]) == (
        fake.spoken[0].context_id,
        "",
        False,
    )

    before = len(fake.received)
    assert await spoken(cartesia, Sentence("  ", "r-2", last=True)) == []
    assert len(fake.received) == before  # no context to close, nothing to say


async def test_a_reply_through_the_speaker_reaches_the_call_at_its_rate(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    texts = ["Hello there.", "How can I help?"]
    sent = []
    for seq, text in enumerate(texts):
        reply = text_chunk(seq, text, last=seq == len(texts) - 1)
        sent += [audio.event async for audio in speak(cartesia, reply)]

    assert [chunk.last for chunk in sent] == [False] * (len(sent) - 1) + [True]
    assert {chunk.format for chunk in sent} == {TELEPHONE}
    for seq, text in enumerate(texts):
        audio = sum(len(chunk.audio) for chunk in sent if chunk.sentence == seq)
        assert audio / TELEPHONE.sample_rate == pytest.approx(len(text) * 0.060, abs=0.002)
    assert len({speech.context_id for speech in fake.spoken}) == 1


async def test_a_reply_interrupted_through_the_speaker_is_cancelled_at_cartesia(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    fake.stall_after_chunks = 5
    barge_in = asyncio.Event()
    heard = []
    reply = text_chunk(0, "A long answer the caller talks over.", last=False)
    async for audio in speak(cartesia, reply, cancelled=barge_in.is_set):
        heard.append(audio)
        barge_in.set()  # the caller talks over the first chunk

    assert len(heard) == 1
    await until(lambda: cancels(fake) == [fake.spoken[0].context_id])
    assert not fake.spoken[0].complete


async def test_a_wrong_key_is_refused_with_a_clear_error(fake: FakeCartesia) -> None:
    synthesizer = CartesiaSynthesizer("sk_car_not_this_one", base_url=fake.base_url)
    try:
        async with asyncio.timeout(10):  # an error, not a hang
            with pytest.raises(CartesiaSpeechError, match=r"HTTP 401 \(check CARTESIA_API_KEY\)"):
                await spoken(synthesizer, Sentence("Hello.", "r-1", last=True))
    finally:
        await synthesizer.aclose()
    assert fake.connections == 0


@pytest.mark.parametrize("key", ["", "  "])
def test_an_empty_key_is_refused_naming_the_variable(key: str) -> None:
    with pytest.raises(ValueError, match="CARTESIA_API_KEY"):
        CartesiaSynthesizer(key)


async def test_a_request_cartesia_refuses_is_an_error_saying_why(
    cartesia: CartesiaSynthesizer,
) -> None:
    with pytest.raises(
        CartesiaSpeechError, match="400 Invalid request: voice must name a voice id"
    ):
        [_ async for _ in cartesia.synthesize(Sentence("Hello.", "r-1", last=True), voice="")]


async def test_a_silent_server_is_an_error_and_its_context_is_cancelled(
    fake: FakeCartesia,
) -> None:
    fake.first_chunk_delay_s = 60
    synthesizer = CartesiaSynthesizer(fake.api_key, base_url=fake.base_url, answer_timeout_s=0.2)
    try:
        with pytest.raises(CartesiaSpeechError, match="said nothing"):
            await spoken(synthesizer, Sentence("Anyone there?", "r-1", last=True))
        await until(lambda: cancels(fake) == [fake.spoken[0].context_id])
    finally:
        await synthesizer.aclose()


async def test_the_connection_is_reopened_after_the_server_drops_it(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    await spoken(cartesia, Sentence("Before the drop.", "r-1", last=True))
    await fake.drop_connections()

    after = await spoken(cartesia, Sentence("After the drop.", "r-2", last=True))

    assert samples(after) == fake.samples_for("After the drop.", RATE)
    assert fake.connections == 2


async def test_a_connection_dropped_mid_sentence_is_an_error_and_the_reply_goes_on(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer
) -> None:
    fake.stall_after_chunks = 1
    cut = speech(cartesia, Sentence("Cut off in the middle.", "r-1", last=False))
    await anext(cut)
    await fake.drop_connections()
    with pytest.raises(CartesiaSpeechError, match="dropped"):
        await anext(cut)

    fake.stall_after_chunks = None
    rest = await spoken(cartesia, Sentence("Where was I?", "r-1", last=True))
    assert samples(rest) == fake.samples_for("Where was I?", RATE)
    assert fake.connections == 2
    assert fake.spoken[1].context_id != fake.spoken[0].context_id


async def test_the_fake_takes_the_key_and_version_where_cartesia_does(fake: FakeCartesia) -> None:
    url = fake.websocket_url + PATH
    async with connect(f"{url}?api_key={fake.api_key}&cartesia_version=2026-03-01"):
        pass
    async with connect(
        url, additional_headers={"X-API-Key": fake.api_key, "Cartesia-Version": "2026-03-01"}
    ):
        pass
    for query, status in [
        (f"api_key={fake.api_key}", 400),
        (f"api_key={fake.api_key}&cartesia_version=latest", 400),
        ("api_key=sk_car_wrong&cartesia_version=2026-03-01", 401),
        ("cartesia_version=2026-03-01", 401),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}?{query}"):
                pass
        assert refused.value.response.status_code == status, query


async def test_time_to_first_audio_through_the_fake(
    fake: FakeCartesia, cartesia: CartesiaSynthesizer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Measured, not judged: what the adapter and the wire add before a sentence's first audio,
    on an open connection, with a server that answers at once."""
    await spoken(cartesia, Sentence("Warming up.", "warm-up", last=True))
    text = "Thanks for calling, how can I help you today?"
    waits = []
    for reply in range(4):
        for index in range(5):
            sentence = Sentence(text, f"r-{reply}", last=index == 4)
            audio = speech(cartesia, sentence)
            began = time.perf_counter()
            chunks = [await anext(audio)]
            waits.append(time.perf_counter() - began)
            chunks += [chunk async for chunk in audio]
            assert samples(chunks) == fake.samples_for(text, RATE)

    with capsys.disabled():
        print(
            f"\nCartesia adapter through the fake: time to first audio, median "
            f"{statistics.median(waits) * 1000:.2f} ms over {len(waits)} sentences "
            f"(min {min(waits) * 1000:.2f}, max {max(waits) * 1000:.2f})"
        )
