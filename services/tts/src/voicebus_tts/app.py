"""The TTS worker on the bus: reply text in, the call's audio out to its gateway."""

from __future__ import annotations

import logging
from typing import assert_never

from faststream import FastStream
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from voicebus_contracts import Envelope, ReplyCancelled, ReplyEvent, ReplyTextChunk
from voicebus_contracts.topics import REPLIES, gateway_topic
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_tts.core import PRODUCER, Speaker
from voicebus_tts.espeak import EspeakSynthesizer, synthesize_pcm
from voicebus_tts.instant import InstantSynthesizer
from voicebus_tts.lru import Lru
from voicebus_tts.ports import CallRoutes, SpeechSynthesizer
from voicebus_tts.routes import CachedRoutes
from voicebus_tts.settings import TtsSettings

log = logging.getLogger(__name__)

CONSUMER_GROUP = "tts"
CANCELLED_REPLIES_REMEMBERED = 10_000
"""Replies the caller interrupted, remembered so text of theirs still to come is not spoken."""


def create_broker(*, bus: BusSettings, speaker: Speaker, routes: CallRoutes) -> KafkaBroker:
    """The broker with the TTS subscriber on it."""
    broker = make_broker(bus.kafka_bootstrap, client_id=f"voicebus-tts-{bus.instance_id}")
    cancelled: Lru[str, None] = Lru(size=CANCELLED_REPLIES_REMEMBERED)

    @broker.subscriber(
        REPLIES.name,
        **consumer_options(CONSUMER_GROUP, fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms),
    )
    async def on_replies(env: Envelope[ReplyEvent]) -> None:
        match env.event:
            case ReplyCancelled(reply_id=reply_id):
                cancelled.put(reply_id, None)
                log.info("call %s: reply %s cancelled, no more of it spoken", env.call_id, reply_id)
            case ReplyTextChunk() as text if text.reply_id in cancelled:
                log.info(
                    "call %s: reply %s was cancelled, chunk %d not spoken",
                    env.call_id,
                    text.reply_id,
                    text.seq,
                )
            case ReplyTextChunk():
                await speak(env)  # type: ignore[arg-type]  # narrowed by the match

    async def speak(env: Envelope[ReplyTextChunk]) -> None:
        text = env.event
        try:
            route = await routes.lookup(env.call_id)
            if route is None:
                log.warning(
                    "call %s: not in the call registry (ended, or never started); "
                    "dropping reply %s chunk %d",
                    env.call_id,
                    text.reply_id,
                    text.seq,
                )
                return
            to_gateway = gateway_topic(route.gateway_id)
            async for chunk in speaker.speak(env, route.audio_out):
                await publish(broker, to_gateway, chunk)
        except Exception:
            log.exception(
                "call %s: reply %s chunk %d not spoken", env.call_id, text.reply_id, text.seq
            )

    return broker


def synthesizer_for(settings: TtsSettings) -> SpeechSynthesizer:
    """The synthesizer VOICEBUS_TTS_PROVIDER names; eSpeak NG starts only when it is chosen."""
    match settings.provider:
        case "espeak":
            # Loads the engine and the voice before the first call; fails fast on a bad voice.
            synthesize_pcm("Ready.", settings.voice, rate_wpm=settings.rate_wpm)
            return EspeakSynthesizer(rate_wpm=settings.rate_wpm)
        case "instant":
            log.warning(
                "TTS provider 'instant' (benchmarks only): replies are spoken as a tone of "
                "%d ms per character",
                settings.instant_ms_per_char,
            )
            return InstantSynthesizer(ms_per_char=settings.instant_ms_per_char)
        case unknown:
            assert_never(unknown)


def create_app(*, bus: BusSettings, settings: TtsSettings) -> FastStream:
    """The TTS worker, its voice ready before it joins the bus; routes from the call registry."""
    redis = Redis.from_url(bus.redis_url)
    speaker = Speaker(
        synthesizer=synthesizer_for(settings),
        voice=settings.voice,
        chunk_ms=settings.chunk_ms,
    )
    routes = CachedRoutes(registry=CallRegistry(redis), size=settings.route_cache_size)
    broker = create_broker(bus=bus, speaker=speaker, routes=routes)
    app = worker_app(broker, service=PRODUCER, bus=bus)

    @app.on_shutdown
    async def close_redis() -> None:
        await redis.aclose()

    return app
