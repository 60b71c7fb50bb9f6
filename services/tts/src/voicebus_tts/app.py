"""The TTS worker on the bus: reply text in, the call's audio out to its gateway."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import cast

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from voicebus_contracts import Envelope, ReplyCancelled, ReplyEvent, ReplyTextChunk
from voicebus_contracts.topics import REPLIES, gateway_topic
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.deadletters import DeadLetters
from voicebus_runtime.lanes import CallLanes
from voicebus_runtime.redis import connect as connect_redis
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_tts.cartesia import CartesiaSynthesizer
from voicebus_tts.core import PRODUCER, Speaker
from voicebus_tts.deepgram_speech import DeepgramSynthesizer
from voicebus_tts.espeak import EspeakSynthesizer, synthesize_pcm
from voicebus_tts.instant import InstantSynthesizer
from voicebus_tts.lru import Lru
from voicebus_tts.openai_speech import OpenAiSynthesizer
from voicebus_tts.phrases import PhraseCache, PhraseKey
from voicebus_tts.ports import CallRoutes, PcmChunk, SpeechSynthesizer
from voicebus_tts.routes import CachedRoutes
from voicebus_tts.settings import TtsSettings
from voicebus_tts.voices import VoiceChoice

log = logging.getLogger(__name__)

CONSUMER_GROUP = "tts"
SHUTDOWN_GRACE_S = 10.0
"""How long a stopping worker lets the sentences under way finish (their offsets then commit)."""
CANCELLED_REPLIES_REMEMBERED = 10_000
"""Replies the caller interrupted, remembered so text of theirs still to come is not spoken."""


def create_broker(
    *,
    bus: BusSettings,
    speaker: Speaker,
    routes: CallRoutes,
    voices: VoiceChoice,
    lanes: CallLanes,
) -> KafkaBroker:
    """The broker with the TTS subscriber on it.

    Each call's sentences are spoken in order in its own lane, different calls' at the same
    time; a cancellation acts the moment it is read, outside the lanes, so the sentence being
    synthesized stops at once and what is still queued of the reply is not spoken.
    """
    client_id = f"voicebus-tts-{bus.instance_id}"
    broker = make_broker(bus.kafka_bootstrap, client_id=client_id)
    lanes.dead_letters = DeadLetters(broker, consumer=client_id)  # a reply that fails to be spoken
    cancelled: Lru[str, None] = Lru(size=CANCELLED_REPLIES_REMEMBERED)

    @broker.subscriber(
        REPLIES.name,
        **consumer_options(
            CONSUMER_GROUP,
            fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms,
            commit="by_lanes",
            session_timeout_ms=bus.kafka_session_timeout_ms,
        ),
    )
    async def on_replies(env: Envelope[ReplyEvent], message: KafkaMessage) -> None:
        match env.event:
            case ReplyCancelled(reply_id=reply_id):
                cancelled.put(reply_id, None)
                log.info("call %s: reply %s cancelled, no more of it spoken", env.call_id, reply_id)
                await lanes.submit(message, env.call_id, _nothing)
            case ReplyTextChunk(voiced=True):  # a realtime model spoke it itself
                await lanes.submit(message, env.call_id, _nothing)
            case ReplyTextChunk():
                text_env = cast(Envelope[ReplyTextChunk], env)
                await lanes.submit(message, env.call_id, partial(speak, text_env))

    async def speak(env: Envelope[ReplyTextChunk]) -> None:
        text = env.event
        if text.reply_id in cancelled:
            log.info(
                "call %s: reply %s was cancelled, chunk %d not spoken",
                env.call_id,
                text.reply_id,
                text.seq,
            )
            return
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
            audio = speaker.speak(
                env,
                route.audio_out,
                voice=voices.of(route.agent_id),
                cancelled=lambda: text.reply_id in cancelled,
            )
            async for chunk in audio:
                await publish(broker, to_gateway, chunk)
        except Exception:
            log.exception(
                "call %s: reply %s chunk %d not spoken", env.call_id, text.reply_id, text.seq
            )

    return broker


async def _nothing() -> None:
    """A cancellation's work: done when it is read; its lane only keeps its offset in order."""


def synthesizers_for(settings: TtsSettings) -> dict[str, SpeechSynthesizer]:
    """The synthesizers this worker offers, by provider: the configured one, and beside it
    eSpeak NG and every cloud provider whose key is set (none beside the instant one)."""
    if settings.provider == "instant":
        log.warning(
            "TTS provider 'instant' (benchmarks only): replies are spoken as a tone of "
            "%d ms per character",
            settings.instant_ms_per_char,
        )
        return {"instant": InstantSynthesizer(ms_per_char=settings.instant_ms_per_char)}
    # Loads the engine and the voice before the first call; fails fast on a bad voice.
    synthesize_pcm("Ready.", settings.voice, rate_wpm=settings.rate_wpm)
    offered: dict[str, SpeechSynthesizer] = {
        "espeak": EspeakSynthesizer(rate_wpm=settings.rate_wpm)
    }
    if key := settings.api_key("cartesia"):
        offered["cartesia"] = CartesiaSynthesizer(
            key, model=settings.cartesia_model, base_url=settings.cartesia_url
        )
    if key := settings.api_key("openai"):
        offered["openai"] = OpenAiSynthesizer(
            key, model=settings.openai_model, base_url=settings.openai_url
        )
    if key := settings.api_key("deepgram"):
        offered["deepgram"] = DeepgramSynthesizer(key, base_url=settings.deepgram_url)
    return offered


def voices_for(
    settings: TtsSettings, synthesizers: dict[str, SpeechSynthesizer], agents: AgentDirectory
) -> VoiceChoice:
    """Each offered synthesizer behind the phrase cache, with its default voice."""
    phrases: Lru[PhraseKey, tuple[PcmChunk, ...]] = Lru(size=max(1, settings.phrase_cache_size))
    default_voices = {
        "espeak": settings.voice,
        "instant": settings.voice,
        "cartesia": settings.cartesia_voice,
        "openai": settings.openai_voice,
        "deepgram": settings.deepgram_voice,
    }
    cached: dict[str, SpeechSynthesizer] = {
        provider: (
            PhraseCache(
                synthesizer,
                provider=provider,
                phrases=phrases,
                max_chars=settings.phrase_max_chars,
            )
            if settings.phrase_cache_size
            else synthesizer
        )
        for provider, synthesizer in synthesizers.items()
    }
    log.info("TTS providers offered to agents: %s", ", ".join(sorted(cached)))
    return VoiceChoice(
        default=settings.provider,
        synthesizers=cached,
        voices={p: default_voices[p] for p in cached},
        agents=agents,
        language=settings.language,
    )


def create_app(*, bus: BusSettings, settings: TtsSettings) -> FastStream:
    """The TTS worker, its voices ready before it joins the bus; routes from the call registry,
    each call's voice from its agent."""
    redis = connect_redis(bus.redis_url)
    routes = CachedRoutes(registry=CallRegistry(redis), size=settings.route_cache_size)
    agents = AgentDirectory()
    offered = synthesizers_for(settings)
    voices = voices_for(settings, offered, agents)
    lanes = CallLanes()
    speaker = Speaker(chunk_ms=settings.chunk_ms)
    broker = create_broker(bus=bus, speaker=speaker, routes=routes, voices=voices, lanes=lanes)
    agents.follow(broker)
    app = worker_app(broker, service=PRODUCER, bus=bus)

    @app.on_shutdown
    async def finish_what_is_under_way() -> None:
        try:
            await asyncio.wait_for(lanes.idle(), timeout=SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("stopped with sentences still being spoken (they are spoken again)")

    @app.after_shutdown
    async def close_connections() -> None:
        await redis.aclose()
        if isinstance(cartesia := offered.get("cartesia"), CartesiaSynthesizer):
            await cartesia.aclose()  # its one WebSocket

    return app
