import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from redis.asyncio import Redis

from voicebus_agent.app import build
from voicebus_agent.history import RedisConversationStore
from voicebus_agent.settings import AgentSettings
from voicebus_contracts import (
    TELEPHONE,
    CallStarted,
    Envelope,
    FinalTranscript,
    ReplyTextChunk,
    StageStamps,
    envelope,
)
from voicebus_contracts.topics import CALLS, REPLIES, TRANSCRIPTS
from voicebus_runtime.bus import headers_of
from voicebus_runtime.settings import BusSettings


@pytest.fixture
async def agent(
    redis_url: str,
) -> AsyncIterator[tuple[KafkaBroker, list[Envelope[ReplyTextChunk]]]]:
    bus = BusSettings(redis_url=redis_url, instance_id="agent-test")
    _, broker = build(settings=AgentSettings(greeting="Welcome. Ask me anything."), bus=bus)
    replies: list[Envelope[ReplyTextChunk]] = []

    @broker.subscriber(REPLIES.name, group_id="test-observer")
    async def observe(env: Envelope[ReplyTextChunk]) -> None:
        replies.append(env)

    async with TestKafkaBroker(broker) as test_broker:
        yield test_broker, replies


async def send(broker: KafkaBroker, topic: str, env: Envelope[Any]) -> None:
    await broker.publish(
        env.model_dump_json().encode(), topic, key=env.call_id.encode(), headers=headers_of(env)
    )


async def test_call_start_is_greeted(
    agent: tuple[KafkaBroker, list[Envelope[ReplyTextChunk]]],
) -> None:
    broker, replies = agent
    call_id = f"CA{uuid.uuid4().hex}"
    started = CallStarted(
        transport="twilio",
        agent_id="default",
        gateway_id="gw",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
    )
    await send(broker, CALLS.name, envelope(started, call_id=call_id, producer="gateway"))
    assert [r.event.text for r in replies] == ["Welcome.", "Ask me anything.", ""]
    assert replies[-1].event.last
    assert all(r.call_id == call_id and r.event.in_reply_to is None for r in replies)


async def test_transcript_is_answered_with_stamps_and_redelivery_repeats_the_same_events(
    agent: tuple[KafkaBroker, list[Envelope[ReplyTextChunk]]], redis_url: str
) -> None:
    broker, replies = agent
    call_id = f"CA{uuid.uuid4().hex}"
    stamps = StageStamps(speech_ended=100.0, turn_ended=100.5, transcribed=101.0)
    heard = envelope(
        FinalTranscript(turn_id=f"{call_id}:t1", text="Book a table for two."),
        call_id=call_id,
        producer="stt",
        stamps=stamps,
    )
    await send(broker, TRANSCRIPTS.name, heard)
    first = list(replies)
    assert first[0].event.text == "I heard you say: Book a table for two."
    assert first[0].event.in_reply_to == f"{call_id}:t1"
    assert first[0].stamps.transcribed == 101.0
    assert first[0].stamps.reply_first_text is not None

    await send(broker, TRANSCRIPTS.name, heard)
    again = replies[len(first) :]
    assert [r.event_id for r in again] == [r.event_id for r in first]

    redis = Redis.from_url(redis_url)
    try:
        history = await RedisConversationStore(redis=redis, ttl_s=60).history(call_id)
        assert [m.role for m in history] == ["user", "agent"]
    finally:
        await redis.delete(
            f"voicebus:call:{call_id}:history", f"voicebus:call:{call_id}:history-ids"
        )
        await redis.aclose()


async def test_empty_transcript_gets_no_reply(
    agent: tuple[KafkaBroker, list[Envelope[ReplyTextChunk]]],
) -> None:
    broker, replies = agent
    silence = FinalTranscript(turn_id="CAx:t1", text="  ")
    await send(broker, TRANSCRIPTS.name, envelope(silence, call_id="CAx", producer="stt"))
    assert replies == []
