"""The agent's bus wiring: greet when a call starts, answer every final transcript."""

from __future__ import annotations

import logging
import time
from typing import Annotated
from uuid import UUID

from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import Field
from redis.asyncio import Redis

from voicebus_agent.conversation import Conversation, Reply, chunks_of
from voicebus_agent.history import RedisConversationStore
from voicebus_agent.ports import Responder
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_agent.settings import AgentSettings
from voicebus_contracts import (
    CallEnded,
    CallStarted,
    Envelope,
    FinalTranscript,
    StageStamps,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import CALLS, REPLIES, TRANSCRIPTS
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings

SERVICE = "agent"
AgentInput = Annotated[CallStarted | CallEnded | FinalTranscript, Field(discriminator="type")]
log = logging.getLogger(__name__)


def build(
    *, settings: AgentSettings, bus: BusSettings, responder: Responder | None = None
) -> tuple[FastStream, KafkaBroker]:
    broker = make_broker(bus.kafka_bootstrap, client_id=f"{SERVICE}-{bus.instance_id}")
    app = worker_app(broker, service=SERVICE, bus=bus)
    redis = Redis.from_url(bus.redis_url)
    store = RedisConversationStore(redis=redis, ttl_s=settings.history_ttl_s)
    replies_from = responder or AcknowledgingResponder()

    def conversation(call_id: str) -> Conversation:
        return Conversation(call_id=call_id, store=store, responder=replies_from)

    async def speak(call_id: str, reply: Reply, *, cause: UUID, stamps: StageStamps) -> None:
        said: list[str] = []
        async for chunk in chunks_of(reply):
            if chunk.seq == 0:
                stamps = stamps.stamp(reply_first_text=time.time())
            event_id = derived_id(cause, f"reply-{chunk.seq}")
            env = envelope(
                chunk, call_id=call_id, producer=SERVICE, stamps=stamps, event_id=event_id
            )
            await publish(broker, REPLIES, env)
            said.append(chunk.text)
        await conversation(call_id).said(reply.reply_id, " ".join(t for t in said if t))

    async def greet(env: Envelope[AgentInput], started: CallStarted) -> None:
        log.info("call %s started (agent %s): greeting", env.call_id, started.agent_id)
        reply = conversation(env.call_id).greet(settings.greeting)
        await speak(env.call_id, reply, cause=env.event_id, stamps=env.stamps)

    async def answer(env: Envelope[AgentInput], transcript: FinalTranscript) -> None:
        if not transcript.text.strip():
            log.info("call %s turn %s: nothing heard, no reply", env.call_id, transcript.turn_id)
            return
        reply = await conversation(env.call_id).answer(
            turn_id=transcript.turn_id, caller_text=transcript.text
        )
        await speak(env.call_id, reply, cause=env.event_id, stamps=env.stamps)

    # One subscriber for both topics: one consumer-group join at start, not one per topic.
    @broker.subscriber(
        CALLS.name,
        TRANSCRIPTS.name,
        **consumer_options(SERVICE, fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms),
    )
    async def on_calls_and_transcripts(env: Envelope[AgentInput]) -> None:
        match env.event:
            case CallStarted() as started:
                await greet(env, started)
            case FinalTranscript() as transcript:
                await answer(env, transcript)

    @app.after_shutdown
    async def close_redis() -> None:
        await redis.aclose()

    return app, broker
