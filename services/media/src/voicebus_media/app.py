"""Media on the bus: inbound audio and call lifecycle in, speech events and utterances out."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from voicebus_contracts import (
    CallEnded,
    CallEvent,
    CallStarted,
    Envelope,
    InboundAudioFrame,
    Utterance,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, SPEECH, UTTERANCES
from voicebus_media.calls import Calls
from voicebus_media.ports import VoiceActivityModel
from voicebus_media.settings import MediaSettings
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.settings import BusSettings

log = logging.getLogger(__name__)

GROUP = "media"


def build_broker(
    *, bus: BusSettings, settings: MediaSettings, vad: VoiceActivityModel
) -> tuple[KafkaBroker, Calls]:
    """The broker with media's subscribers, and the calls they keep."""
    broker = make_broker(bus.kafka_bootstrap, client_id=f"voicebus-media-{bus.instance_id}")
    calls = Calls(vad=vad, settings=settings)

    @broker.subscriber(AUDIO_IN.name, **consumer_options(GROUP))
    async def on_audio_in(env: Envelope[InboundAudioFrame]) -> None:
        try:
            heard = calls.hear(env)
        except Exception:
            log.exception("call %s: frame %d not processed", env.call_id, env.event.seq)
            return
        for out in heard:
            await publish(broker, UTTERANCES if isinstance(out.event, Utterance) else SPEECH, out)

    @broker.subscriber(CALLS.name, **consumer_options(GROUP))
    async def on_calls(env: Envelope[CallEvent]) -> None:
        if isinstance(env.event, CallStarted):
            calls.started(env.call_id, env.event)
        elif isinstance(env.event, CallEnded):
            calls.ended(env.call_id)

    return broker, calls
