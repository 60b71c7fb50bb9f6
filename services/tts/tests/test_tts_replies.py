from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import numpy as np
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from redis.asyncio import Redis

from voicebus_contracts import (
    TELEPHONE,
    AudioFormat,
    CallRoute,
    Envelope,
    OutboundAudioChunk,
    ReplyCancelled,
    ReplyTextChunk,
    StageStamps,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import REPLIES, gateway_topic
from voicebus_runtime.bus import publish
from voicebus_runtime.lanes import CallLanes
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings
from voicebus_tts.app import create_broker
from voicebus_tts.core import Speaker
from voicebus_tts.ports import PcmChunk, Sentence
from voicebus_tts.routes import CachedRoutes
from voicebus_tts.voices import Voice, VoiceChoice

WEB_AUDIO = AudioFormat(encoding="pcm16", sample_rate=24_000)
FIRST_TEXT_AT = 1_700_000_000.0
FAKE_RATE = 22_050
FAKE_CHUNK_SAMPLES = 1_000
FAKE_CHUNKS_PER_TEXT = 3


class FakeSynthesizer:
    """Speaks any non-empty text as a few 1000-sample chunks of a 440 Hz tone at 22050 Hz."""

    def __init__(
        self, *, chunks_per_text: int = FAKE_CHUNKS_PER_TEXT, pause_s: float = 0.0
    ) -> None:
        self.chunks_per_text = chunks_per_text
        self.pause_s = pause_s
        """Before each chunk, as a real engine takes time."""
        self.produced = 0
        self.voices: list[str] = []
        self.stopped_early = 0
        self.started = asyncio.Event()
        """Set once a first chunk is out."""

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        self.voices.append(voice)
        if not sentence.text:
            return
        done = False
        try:
            for _ in range(self.chunks_per_text):
                await asyncio.sleep(self.pause_s)
                start = self.produced * FAKE_CHUNK_SAMPLES
                t = np.arange(start, start + FAKE_CHUNK_SAMPLES) / FAKE_RATE
                self.produced += 1
                samples = (8_000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
                yield PcmChunk(samples=samples, sample_rate=FAKE_RATE)
                self.started.set()
            done = True
        finally:
            self.stopped_early += not done


class Gateways:
    """The gateway topics of two replicas, as the calls' registry routes say."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.phone_id = f"gw-phone-{uuid4().hex[:8]}"
        self.web_id = f"gw-web-{uuid4().hex[:8]}"
        self.received: dict[str, list[Envelope[OutboundAudioChunk]]] = {
            self.phone_id: [],
            self.web_id: [],
        }
        for gateway_id, inbox in self.received.items():
            broker.subscriber(gateway_topic(gateway_id).name)(self._collector(inbox))

    @staticmethod
    def _collector(
        inbox: list[Envelope[OutboundAudioChunk]],
    ) -> Callable[[Envelope[OutboundAudioChunk]], Awaitable[None]]:
        async def collect(env: Envelope[OutboundAudioChunk]) -> None:
            inbox.append(env)

        return collect


async def test_the_first_audio_leaves_before_the_sentence_is_synthesized() -> None:
    synthesizer = FakeSynthesizer(chunks_per_text=20)
    speaker = Speaker(chunk_ms=200)
    text = reply_text("call-1", "reply-1", 0, "A long sentence.", last=True)

    produced_at_publish: list[int] = []
    audio: list[OutboundAudioChunk] = []
    async for env in speaker.speak(text, TELEPHONE, voice=Voice("fake", "en-gb", synthesizer)):
        produced_at_publish.append(synthesizer.produced)
        audio.append(env.event)

    assert produced_at_publish[0] * FAKE_CHUNK_SAMPLES / FAKE_RATE < 0.1  # seconds synthesized
    assert synthesizer.voices == ["en-gb"]
    # After the first, chunks carry 200 ms each, so the gateway gets few, sizeable messages.
    assert {len(chunk.audio) for chunk in audio[1:-1]} == {1_600}
    assert sum(len(chunk.audio) for chunk in audio) == pytest.approx(
        20 * FAKE_CHUNK_SAMPLES / FAKE_RATE * 8_000, abs=4
    )


async def test_a_sentence_is_spoken_to_its_end_without_waiting_for_the_next() -> None:
    speaker = Speaker(chunk_ms=200)
    text = reply_text("call-1", "reply-1", 0, "First of several sentences.", last=False)
    voice = Voice("fake", "en-us", FakeSynthesizer())

    audio = [env.event async for env in speaker.speak(text, TELEPHONE, voice=voice)]

    assert not any(chunk.last for chunk in audio)
    assert sum(len(chunk.audio) for chunk in audio) == pytest.approx(
        FAKE_CHUNKS_PER_TEXT * FAKE_CHUNK_SAMPLES / FAKE_RATE * 8_000, abs=4
    )


@pytest.fixture
async def registry(redis_url: str) -> AsyncIterator[CallRegistry]:
    redis = Redis.from_url(redis_url)
    yield CallRegistry(redis)
    await redis.aclose()


@pytest.fixture
async def calls(registry: CallRegistry) -> AsyncIterator[list[CallRoute]]:
    """Routes registered for the test, forgotten after it."""
    routes: list[CallRoute] = []
    yield routes
    for route in routes:
        await registry.forget(route.call_id, gateway_id=route.gateway_id)


def reply_text(
    call_id: str, reply_id: str, seq: int, text: str, *, last: bool, voiced: bool = False
) -> Envelope[ReplyTextChunk]:
    stamps = StageStamps(reply_first_text=FIRST_TEXT_AT)
    chunk = ReplyTextChunk(
        reply_id=reply_id, in_reply_to="turn-1", seq=seq, text=text, last=last, voiced=voiced
    )
    return envelope(chunk, call_id=call_id, producer="agent", stamps=stamps)


async def start_call(
    registry: CallRegistry, calls: list[CallRoute], gateway_id: str, audio_out: AudioFormat
) -> str:
    call_id = f"call-{uuid4()}"
    route = CallRoute(
        call_id=call_id,
        gateway_id=gateway_id,
        transport="twilio" if audio_out == TELEPHONE else "web",
        agent_id="demo",
        audio_out=audio_out,
    )
    await registry.register(route)
    calls.append(route)
    return call_id


@dataclass
class Tts:
    """The TTS subscriber on a test broker, and the lanes its calls' sentences run in."""

    broker: KafkaBroker
    lanes: CallLanes
    synthesizer: FakeSynthesizer

    async def deliver(self, env: Envelope[Any]) -> None:
        """Publish `env` on the replies topic and wait until TTS has acted on it."""
        await publish(self.broker, REPLIES, env)
        await self.lanes.idle()


@pytest.fixture
def tts(registry: CallRegistry) -> Tts:
    synthesizer = FakeSynthesizer()
    voices = VoiceChoice(
        default="fake", synthesizers={"fake": synthesizer}, voices={"fake": "en-us"}
    )
    lanes = CallLanes()
    broker = create_broker(
        bus=BusSettings(),
        speaker=Speaker(chunk_ms=50),
        routes=CachedRoutes(registry=registry, size=16),
        voices=voices,
        lanes=lanes,
    )
    return Tts(broker, lanes, synthesizer)


async def test_a_replys_audio_goes_to_the_calls_gateway_in_the_calls_format(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    phone_call = await start_call(registry, calls, gateways.phone_id, TELEPHONE)
    web_call = await start_call(registry, calls, gateways.web_id, WEB_AUDIO)
    texts = [
        reply_text(phone_call, "reply-1", 0, "Hello there.", last=False),
        reply_text(phone_call, "reply-1", 1, "How can I help?", last=True),
        reply_text(web_call, "reply-2", 0, "Welcome.", last=True),
    ]

    async with TestKafkaBroker(tts.broker):
        for env in texts:
            await tts.deliver(env)

    phone = gateways.received[gateways.phone_id]
    web = gateways.received[gateways.web_id]
    assert {env.call_id for env in phone} == {phone_call}
    assert {env.call_id for env in web} == {web_call}
    assert {env.event.format for env in phone} == {TELEPHONE}
    assert {env.event.format for env in web} == {WEB_AUDIO}
    synthesized_s = FAKE_CHUNKS_PER_TEXT * FAKE_CHUNK_SAMPLES / FAKE_RATE  # per sentence
    phone_bytes = sum(len(env.event.audio) for env in phone)
    web_bytes = sum(len(env.event.audio) for env in web)
    assert phone_bytes == pytest.approx(2 * synthesized_s * 8_000, abs=4)
    assert web_bytes == pytest.approx(synthesized_s * 24_000 * 2, abs=8)


async def test_each_sentence_numbers_its_own_chunks_so_redelivery_repeats_their_names(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.phone_id, TELEPHONE)
    texts = [
        reply_text(call_id, "reply-1", 0, "Sure.", last=False),
        reply_text(call_id, "reply-1", 1, "Your order ships today.", last=False),
        reply_text(call_id, "reply-1", 2, "Anything else?", last=True),
    ]

    async with TestKafkaBroker(tts.broker):
        for env in texts:
            await tts.deliver(env)
        spoken = len(gateways.received[gateways.phone_id])
        # The middle sentence again (redelivered, or taken over by another worker).
        await tts.deliver(texts[1])

    audio = gateways.received[gateways.phone_id][:spoken]
    again = gateways.received[gateways.phone_id][spoken:]
    for sentence in range(len(texts)):
        numbered = [env.event.seq for env in audio if env.event.sentence == sentence]
        assert numbered == list(range(len(numbered)))
        assert numbered
    assert [env.event.sentence for env in audio] == sorted(env.event.sentence for env in audio)
    middle = [env for env in audio if env.event.sentence == 1]
    assert [(e.event.sentence, e.event.seq, e.event_id) for e in again] == [
        (e.event.sentence, e.event.seq, e.event_id) for e in middle
    ]
    assert [env.event.last for env in audio] == [False] * (len(audio) - 1) + [True]
    assert again  # ...and it is spoken with the same names as the first time
    assert {env.event.reply_id for env in audio} == {"reply-1"}
    first, *rest = audio
    assert first.stamps.reply_first_text == FIRST_TEXT_AT
    assert first.stamps.tts_first_audio is not None
    assert first.stamps.tts_first_audio > FIRST_TEXT_AT
    assert all(env.stamps.tts_first_audio is None for env in rest)
    assert first.event_id == derived_id(texts[0].event_id, "audio-0")
    assert len({env.event_id for env in audio}) == len(audio)


async def test_a_reply_ending_in_silence_still_ends(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.web_id, WEB_AUDIO)

    async with TestKafkaBroker(tts.broker):
        await tts.deliver(reply_text(call_id, "reply-1", 0, "Okay.", last=False))
        await tts.deliver(reply_text(call_id, "reply-1", 1, "", last=True))

    audio = gateways.received[gateways.web_id]
    end = audio[-1].event
    assert end.last
    assert (end.sentence, end.seq) == (1, 0)
    spoken_bytes = sum(len(env.event.audio) for env in audio)
    one_sentence_bytes = FAKE_CHUNKS_PER_TEXT * FAKE_CHUNK_SAMPLES / FAKE_RATE * 24_000 * 2
    assert spoken_bytes == pytest.approx(one_sentence_bytes, abs=8)


async def test_a_call_keeps_its_route_for_the_rest_of_the_reply(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.phone_id, TELEPHONE)

    async with TestKafkaBroker(tts.broker):
        await tts.deliver(reply_text(call_id, "reply-1", 0, "One.", last=False))
        await registry.forget(call_id, gateway_id=gateways.phone_id)  # the key expired
        await tts.deliver(reply_text(call_id, "reply-1", 1, "Two.", last=True))

    assert gateways.received[gateways.phone_id][-1].event.last


async def test_a_reply_for_an_unknown_call_is_dropped_with_a_warning(
    tts: Tts,
    registry: CallRegistry,
    calls: list[CallRoute],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateways = Gateways(tts.broker)
    known_call = await start_call(registry, calls, gateways.phone_id, TELEPHONE)
    unknown_call = f"call-{uuid4()}"

    with caplog.at_level(logging.WARNING, logger="voicebus_tts"):
        async with TestKafkaBroker(tts.broker):
            await tts.deliver(reply_text(unknown_call, "r-x", 0, "Hi.", last=True))
            await tts.deliver(reply_text(known_call, "r-y", 0, "Hi.", last=True))

    assert unknown_call in caplog.text
    assert "not in the call registry" in caplog.text
    received = [env for inbox in gateways.received.values() for env in inbox]
    assert received
    assert {env.call_id for env in received} == {known_call}


async def test_text_of_a_cancelled_reply_is_not_spoken(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.phone_id, TELEPHONE)
    cancelled = ReplyCancelled(reply_id="reply-1", heard_text="Sure.")

    async with TestKafkaBroker(tts.broker):
        await tts.deliver(reply_text(call_id, "reply-1", 0, "Sure.", last=False))
        await tts.deliver(envelope(cancelled, call_id=call_id, producer="agent"))
        await tts.deliver(reply_text(call_id, "reply-1", 1, "And more.", last=True))
        await tts.deliver(reply_text(call_id, "reply-2", 0, "Okay.", last=True))

    spoken = [
        (env.event.reply_id, env.event.sentence) for env in gateways.received[gateways.phone_id]
    ]
    assert ("reply-1", 0) in spoken
    assert ("reply-1", 1) not in spoken
    assert ("reply-2", 0) in spoken


async def test_what_a_realtime_model_said_itself_is_not_spoken_again(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.phone_id, TELEPHONE)

    async with TestKafkaBroker(tts.broker):
        await tts.deliver(reply_text(call_id, "reply-1", 0, "Sure.", last=False, voiced=True))
        await tts.deliver(reply_text(call_id, "reply-1", 1, "", last=True, voiced=True))
        await tts.deliver(reply_text(call_id, "reply-2", 0, "Okay.", last=True))

    spoken = {env.event.reply_id for env in gateways.received[gateways.phone_id]}
    assert spoken == {"reply-2"}
    assert len(tts.synthesizer.voices) == 1  # only "Okay." went to the synthesizer


async def test_a_reply_cancelled_mid_sentence_stops_its_synthesis_and_sends_nothing_more(
    tts: Tts, registry: CallRegistry, calls: list[CallRoute]
) -> None:
    tts.synthesizer.chunks_per_text, tts.synthesizer.pause_s = 50, 0.01  # half a second
    gateways = Gateways(tts.broker)
    call_id = await start_call(registry, calls, gateways.phone_id, TELEPHONE)
    cancelled = ReplyCancelled(reply_id="reply-1", heard_text="")

    async with TestKafkaBroker(tts.broker):
        long = reply_text(call_id, "reply-1", 0, "A long sentence, cut off.", last=True)
        await publish(tts.broker, REPLIES, long)  # its synthesis starts in the call's lane
        await tts.synthesizer.started.wait()
        # Read while the sentence is still being synthesized: it stops there.
        await tts.deliver(envelope(cancelled, call_id=call_id, producer="agent"))

    sent = gateways.received[gateways.phone_id]
    assert tts.synthesizer.stopped_early == 1
    assert tts.synthesizer.produced < 50
    assert not any(env.event.last for env in sent)
    spoken_s = sum(len(env.event.audio) for env in sent) / TELEPHONE.sample_rate
    assert spoken_s < 50 * FAKE_CHUNK_SAMPLES / FAKE_RATE / 2
