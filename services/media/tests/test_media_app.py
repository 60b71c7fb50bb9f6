"""The media worker's handlers over FastStream's in-memory Kafka broker, with real Silero VAD."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from redis.asyncio import Redis

from voicebus_audio import pcm16_to_mulaw, resample
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallEnded,
    CallRoute,
    CallStarted,
    Envelope,
    GatewayEvent,
    InboundAudioFrame,
    PausePlayback,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    Utterance,
    UtteranceChunk,
    UtteranceEvent,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, SPEECH, UTTERANCES, gateway_topic
from voicebus_media.app import build_broker
from voicebus_media.calls import Calls
from voicebus_media.ports import Samples
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad
from voicebus_runtime.bus import publish
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

CALL = "CA-test-1"
GATEWAY = "gw-media-test"
FRAME_BYTES = 160
"""20 ms of mu-law at 8 kHz, as Twilio Media Streams sends it."""
T0 = 1_700_000_000.0
LEAD_S, TAIL_S = 0.6, 1.2


def telephone_frames(speech_16k: Samples) -> list[Envelope[InboundAudioFrame]]:
    """Silence, the speech and silence again, as a Twilio call's inbound frames."""
    speech = resample(speech_16k, from_rate=16_000, to_rate=8_000)
    audio = np.concatenate(
        [
            np.zeros(round(LEAD_S * 8_000), np.int16),
            speech,
            np.zeros(round(TAIL_S * 8_000), np.int16),
        ]
    )
    mulaw = pcm16_to_mulaw(audio)
    return [
        envelope(
            InboundAudioFrame(
                seq=n,
                audio=mulaw[start : start + FRAME_BYTES],
                format=TELEPHONE,
                received_at=T0 + n * 0.02,
            ),
            call_id=CALL,
            producer="gateway",
        )
        for n, start in enumerate(range(0, len(mulaw), FRAME_BYTES))
    ]


@pytest.fixture
async def registry(redis_url: str) -> AsyncIterator[CallRegistry]:
    """The call registry, with CALL routed to gateway GATEWAY."""
    redis = Redis.from_url(redis_url)
    registry = CallRegistry(redis)
    await registry.register(
        CallRoute(
            call_id=CALL,
            gateway_id=GATEWAY,
            transport="twilio",
            agent_id="demo",
            audio_out=TELEPHONE,
        )
    )
    yield registry
    await registry.forget(CALL, gateway_id=GATEWAY)
    await redis.aclose()


def media_broker(registry: CallRegistry) -> tuple[KafkaBroker, Calls]:
    return build_broker(
        bus=BusSettings(kafka_bootstrap="127.0.0.1:9"),
        settings=MediaSettings(),
        vad=SileroVad(),
        registry=registry,
    )


async def test_a_caller_turn_comes_out_as_speech_events_and_one_utterance(
    caller_speech: Samples, registry: CallRegistry
) -> None:
    broker, calls = media_broker(registry)
    speech_events: list[Envelope[SpeechEvent]] = []
    utterances: list[Envelope[Utterance]] = []
    to_gateway: list[Envelope[GatewayEvent]] = []

    @broker.subscriber(gateway_topic(GATEWAY).name)
    async def got_command(env: Envelope[GatewayEvent]) -> None:
        to_gateway.append(env)

    @broker.subscriber(SPEECH.name)
    async def got_speech(env: Envelope[SpeechEvent]) -> None:
        speech_events.append(env)

    chunks: list[UtteranceChunk] = []

    @broker.subscriber(UTTERANCES.name)
    async def got_utterance(env: Envelope[UtteranceEvent]) -> None:
        if isinstance(env.event, Utterance):
            utterances.append(env)  # type: ignore[arg-type]  # narrowed just above
        else:
            chunks.append(env.event)

    started = CallStarted(
        transport="twilio",
        agent_id="demo",
        gateway_id="gw-1",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
    )
    async with TestKafkaBroker(broker):
        await publish(broker, CALLS, envelope(started, call_id=CALL, producer="gateway"))
        for frame in telephone_frames(caller_speech):
            await publish(broker, AUDIO_IN, frame)
        assert CALL in calls
        await publish(
            broker, CALLS, envelope(CallEnded(reason="hangup"), call_id=CALL, producer="gateway")
        )
        assert CALL not in calls

    assert [type(env.event) for env in speech_events] == [SpeechStarted, SpeechStopped]
    assert len(utterances) == 1
    assert chunks  # the turn went to STT as it grew, too
    assert chunks[-1].paused
    assert {chunk.turn_id for chunk in chunks} == {utterances[0].event.turn_id}
    # The caller started speaking: the agent's audio is paused at once, whatever it was doing.
    assert [env.event for env in to_gateway] == [
        PausePlayback(turn_id=speech_events[0].event.turn_id)
    ]
    assert to_gateway[0].event_id == derived_id(speech_events[0].event_id, "control.pause_playback")
    start, stop = (env.event for env in speech_events)
    utterance = utterances[0].event
    assert isinstance(start, SpeechStarted)
    assert isinstance(stop, SpeechStopped)
    assert start.turn_id == stop.turn_id == utterance.turn_id

    speech_ms = 1000 * len(caller_speech) // 16_000
    assert LEAD_S * 1000 - 100 <= start.audio_offset_ms < stop.audio_offset_ms
    assert stop.audio_offset_ms <= (LEAD_S * 1000) + speech_ms + 100
    assert utterance.format == SPEECH_16K
    assert len(utterance.audio) == 32 * utterance.duration_ms
    spoken_ms = stop.audio_offset_ms - start.audio_offset_ms
    around = MediaSettings().preroll_ms + MediaSettings().trailing_silence_ms
    assert spoken_ms + around - 200 <= utterance.duration_ms <= spoken_ms + around + 100

    stamps = utterances[0].stamps
    assert stamps == speech_events[1].stamps
    assert stamps.speech_ended is not None
    assert stamps.turn_ended is not None
    # The end of speech is dated by the frame that carried it, not by when media got to it.
    assert abs(stamps.speech_ended - (T0 + stop.audio_offset_ms / 1000)) <= 0.05
    assert stamps.turn_ended > stamps.speech_ended


async def test_bad_frames_are_skipped_without_stopping_the_worker(
    caller_speech: Samples, registry: CallRegistry
) -> None:
    broker, calls = media_broker(registry)
    utterances: list[Envelope[Utterance]] = []

    @broker.subscriber(UTTERANCES.name)
    async def got_utterance(env: Envelope[UtteranceEvent]) -> None:
        if isinstance(env.event, Utterance):
            utterances.append(env)  # type: ignore[arg-type]  # narrowed just above

    odd = envelope(
        InboundAudioFrame(seq=0, audio=b"\x00\x01\x02", format=SPEECH_16K, received_at=T0),
        call_id="CA-odd",
        producer="gateway",
    )
    async with TestKafkaBroker(broker):
        await publish(broker, AUDIO_IN, odd)
        for frame in telephone_frames(caller_speech):
            await publish(broker, AUDIO_IN, frame)

    assert len(utterances) == 1
    assert "CA-odd" in calls
