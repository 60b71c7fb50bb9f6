"""The bus over a real Kafka-protocol broker: provisioning, keyed publishing, typed consuming."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka.annotations import KafkaMessage

from voicebus_contracts import (
    TELEPHONE,
    CallEnded,
    CallEvent,
    CallStarted,
    Envelope,
    InboundAudioFrame,
    StageStamps,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentEvent, AgentRemoved, AgentSpec
from voicebus_contracts.topics import Topic
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish


def fresh_topic(partitions: int = 3) -> Topic:
    return Topic(f"test.{uuid.uuid4().hex}", partitions, "test events")


async def test_topics_are_created_once_with_their_partitions(kafka_bootstrap: str) -> None:
    topic = fresh_topic(partitions=4)
    await ensure_topics(kafka_bootstrap, [topic])
    await ensure_topics(kafka_bootstrap, [topic])  # a second start changes nothing
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.name])
        assert len(described[0]["partitions"]) == 4
    finally:
        await admin.close()


async def test_events_round_trip_over_the_broker_keyed_and_in_order(kafka_bootstrap: str) -> None:
    calls, frames = fresh_topic(), fresh_topic()
    await ensure_topics(kafka_bootstrap, [calls, frames])
    broker = make_broker(kafka_bootstrap, client_id="roundtrip")
    got_calls: list[Envelope[Any]] = []
    got_frames: list[tuple[Envelope[InboundAudioFrame], bytes | None, dict[str, Any]]] = []
    done, both_calls = asyncio.Event(), asyncio.Event()
    n_frames = 20

    @broker.subscriber(calls.name, **consumer_options("roundtrip", fetch_max_wait_ms=5))
    async def on_calls(env: Envelope[CallEvent]) -> None:
        got_calls.append(env)
        if len(got_calls) == 2:
            both_calls.set()

    @broker.subscriber(frames.name, **consumer_options("roundtrip", fetch_max_wait_ms=5))
    async def on_frames(env: Envelope[InboundAudioFrame], message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # a single record, not a batch
        got_frames.append((env, record.key, message.headers))
        if len(got_frames) == n_frames:
            done.set()

    started = envelope(
        CallStarted(
            transport="twilio",
            agent_id="a",
            gateway_id="g",
            audio_in=TELEPHONE,
            audio_out=TELEPHONE,
        ),
        call_id="CA-roundtrip",
        producer="test",
    )
    ended = envelope(CallEnded(reason="done"), call_id="CA-roundtrip", producer="test")
    sent = [
        envelope(
            InboundAudioFrame(
                seq=i, audio=bytes([i]) * 160, format=TELEPHONE, received_at=float(i)
            ),
            call_id="CA-roundtrip",
            producer="test",
            stamps=StageStamps(speech_ended=float(i)),
        )
        for i in range(n_frames)
    ]
    async with broker:
        await broker.start()
        await publish(broker, calls, started)
        await publish(broker, calls, ended)
        for env in sent:
            await publish(broker, frames, env, confirm=False)
        await asyncio.wait_for(done.wait(), 60)
        await asyncio.wait_for(both_calls.wait(), 60)

    assert got_calls == [started, ended]
    assert [env for env, _, _ in got_frames] == sent
    env, key, headers = got_frames[0]
    assert key == b"CA-roundtrip"
    assert headers["event-type"] == "audio.in"
    assert headers["event-id"] == str(env.event_id)


async def test_an_agent_directory_follows_the_catalog_from_its_first_announcement(
    kafka_bootstrap: str,
) -> None:
    catalog = Topic(f"test.agents.{uuid.uuid4().hex}", 1, "agents", compacted=True)
    await ensure_topics(kafka_bootstrap, [catalog])
    sales = AgentSpec(agent_id="sales", name="Sales", phone_numbers=("+14155550100",))
    support = AgentSpec(agent_id="support", name="Support")
    announcer = make_broker(kafka_bootstrap, client_id="announcer")
    await announcer.start()
    try:
        for event in (
            AgentConfigured(agent=support),
            AgentConfigured(agent=sales),
            AgentConfigured(agent=sales.model_copy(update={"name": "Sales team"})),
            AgentRemoved(agent_id="support"),
        ):
            agent_id = (
                event.agent.agent_id if isinstance(event, AgentConfigured) else event.agent_id
            )
            await publish(announcer, catalog, envelope(event, call_id=agent_id, producer="agent"))
    finally:
        await announcer.stop()

    # A service that starts later still learns the whole catalog.
    directory = AgentDirectory()
    broker = make_broker(kafka_bootstrap, client_id="follower")
    heard = asyncio.Event()

    @broker.subscriber(catalog.name, **consumer_options(None, from_beginning=True))
    async def on_agents(env: Envelope[AgentEvent]) -> None:
        directory.heard(env)
        if isinstance(env.event, AgentRemoved):
            heard.set()

    await broker.start()
    try:
        await asyncio.wait_for(heard.wait(), 20)
    finally:
        await broker.stop()

    assert directory.get("support") is None
    sales_now = directory.get("sales")
    assert sales_now is not None
    assert sales_now.name == "Sales team"
    assert directory.for_number("+14155550100") == sales_now
    assert directory.for_number("+14155550199") is None
