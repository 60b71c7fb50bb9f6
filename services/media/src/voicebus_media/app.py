"""Media on the bus: inbound audio and call lifecycle in, speech events and utterances out."""

from __future__ import annotations

import logging
from typing import Annotated

from faststream.kafka import KafkaBroker
from pydantic import Field

from voicebus_contracts import (
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    CallStatusChanged,
    DtmfReceived,
    Envelope,
    InboundAudioFrame,
    PausePlayback,
    SpeechStarted,
    Utterance,
    UtteranceChunk,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, SPEECH, UTTERANCES
from voicebus_media.calls import PRODUCER, Calls
from voicebus_media.ports import VoiceActivityModel
from voicebus_media.settings import MediaSettings
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.control import CallControl
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

log = logging.getLogger(__name__)

MediaInput = Annotated[
    InboundAudioFrame | CallStarted | CallEnded | CallStatusChanged | DtmfReceived | CallAnsweredBy,
    Field(discriminator="type"),
]
"""Audio in, and every event of the calls topic (those media does not act on are skipped)."""

GROUP = "media"


def build_broker(
    *,
    bus: BusSettings,
    settings: MediaSettings,
    vad: VoiceActivityModel,
    registry: CallRegistry,
) -> tuple[KafkaBroker, Calls]:
    """The broker with media's subscribers, and the calls they keep.

    `registry` finds a call's gateway replica: when the caller starts speaking, media tells it
    to pause the agent's audio at once (barge-in); the agent then resumes or cancels the reply.
    """
    broker = make_broker(bus.kafka_bootstrap, client_id=f"voicebus-media-{bus.instance_id}")
    agents = AgentDirectory()
    agents.follow(broker)
    calls = Calls(vad=vad, settings=settings, agents=agents)
    control = CallControl(broker=broker, registry=registry, producer=PRODUCER)

    async def pause_agent(env: Envelope[SpeechStarted]) -> None:
        try:
            pause = PausePlayback(turn_id=env.event.turn_id)
            await control.send(env.call_id, pause, cause=env.event_id)
        except Exception:
            log.exception("call %s: the agent's audio was not paused", env.call_id)

    # One subscriber for both topics: one consumer-group join at start, not one per topic.
    @broker.subscriber(
        AUDIO_IN.name,
        CALLS.name,
        **consumer_options(
            GROUP,
            fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms,
            commit="periodic",
            session_timeout_ms=bus.kafka_session_timeout_ms,
        ),
    )
    async def on_audio_in_and_calls(env: Envelope[MediaInput]) -> None:
        match env.event:
            case InboundAudioFrame() as frame:
                try:
                    heard = calls.hear(env)  # type: ignore[arg-type]  # narrowed by the match
                except Exception:
                    log.exception("call %s: frame %d not processed", env.call_id, frame.seq)
                    return
                for out in heard:
                    speech = not isinstance(out.event, Utterance | UtteranceChunk)
                    topic = SPEECH if speech else UTTERANCES
                    await publish(broker, topic, out)
                    if isinstance(out.event, SpeechStarted):
                        await pause_agent(out)
            case CallStarted() as started:
                calls.started(env.call_id, started)
            case CallEnded():
                calls.ended(env.call_id)

    return broker, calls
