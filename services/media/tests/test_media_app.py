"""The media worker's handlers over FastStream's in-memory Kafka broker, with real Silero VAD."""

from __future__ import annotations

import numpy as np
from faststream.kafka import TestKafkaBroker

from voicebus_audio import pcm16_to_mulaw, resample
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallEnded,
    CallStarted,
    Envelope,
    InboundAudioFrame,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    Utterance,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, SPEECH, UTTERANCES
from voicebus_media.app import build_broker
from voicebus_media.ports import Samples
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings

CALL = "CA-test-1"
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


async def test_a_caller_turn_comes_out_as_speech_events_and_one_utterance(
    caller_speech: Samples,
) -> None:
    broker, calls = build_broker(
        bus=BusSettings(kafka_bootstrap="127.0.0.1:9"), settings=MediaSettings(), vad=SileroVad()
    )
    speech_events: list[Envelope[SpeechEvent]] = []
    utterances: list[Envelope[Utterance]] = []

    @broker.subscriber(SPEECH.name)
    async def got_speech(env: Envelope[SpeechEvent]) -> None:
        speech_events.append(env)

    @broker.subscriber(UTTERANCES.name)
    async def got_utterance(env: Envelope[Utterance]) -> None:
        utterances.append(env)

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
    assert spoken_ms + 300 <= utterance.duration_ms <= spoken_ms + 500  # pre-roll and tail

    stamps = utterances[0].stamps
    assert stamps == speech_events[1].stamps
    assert stamps.speech_ended is not None
    assert stamps.turn_ended is not None
    # The end of speech is dated by the frame that carried it, not by when media got to it.
    assert abs(stamps.speech_ended - (T0 + stop.audio_offset_ms / 1000)) <= 0.05
    assert stamps.turn_ended > stamps.speech_ended


async def test_bad_frames_are_skipped_without_stopping_the_worker(caller_speech: Samples) -> None:
    broker, calls = build_broker(
        bus=BusSettings(kafka_bootstrap="127.0.0.1:9"), settings=MediaSettings(), vad=SileroVad()
    )
    utterances: list[Envelope[Utterance]] = []

    @broker.subscriber(UTTERANCES.name)
    async def got_utterance(env: Envelope[Utterance]) -> None:
        utterances.append(env)

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
