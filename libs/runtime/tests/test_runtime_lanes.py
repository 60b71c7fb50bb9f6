"""Call lanes over a real Kafka-protocol broker: one call's slow work holds up no other call,
a call's messages run in order, and a partition's offset is committed only past work done."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from voicebus_contracts import CallEnded, CallEvent, Envelope, envelope
from voicebus_contracts.topics import Topic
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish
from voicebus_runtime.lanes import CallLanes


class Calls:
    """A one-partition topic whose messages are handled in lanes; each message's work waits
    until the test releases it by its reason."""

    def __init__(self, broker: KafkaBroker, topic: Topic, group: str) -> None:
        self.lanes = CallLanes()
        self.done: list[str] = []
        self.releases: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

        @broker.subscriber(
            topic.name, **consumer_options(group, fetch_max_wait_ms=5, commit="by_lanes")
        )
        async def on_call(env: Envelope[CallEvent], message: KafkaMessage) -> None:
            await self.lanes.submit(message, env.call_id, lambda: self._work(env))

    async def _work(self, env: Envelope[CallEvent]) -> None:
        assert isinstance(env.event, CallEnded)
        reason = env.event.reason
        self.started.setdefault(reason, asyncio.Event()).set()
        await self.releases.setdefault(reason, asyncio.Event()).wait()
        self.done.append(reason)

    def release(self, reason: str) -> None:
        self.releases.setdefault(reason, asyncio.Event()).set()

    async def until_started(self, reason: str) -> None:
        await asyncio.wait_for(self.started.setdefault(reason, asyncio.Event()).wait(), 20)


@pytest.fixture
async def setup(kafka_bootstrap: str) -> AsyncIterator[tuple[KafkaBroker, Topic, str, Calls]]:
    topic = Topic(f"test.{uuid.uuid4().hex}", 1, "test calls")
    await ensure_topics(kafka_bootstrap, [topic])
    group = f"lanes-{uuid.uuid4().hex[:8]}"
    broker = make_broker(kafka_bootstrap, client_id="lanes")
    calls = Calls(broker, topic, group)
    async with broker:
        await broker.start()
        yield broker, topic, group, calls


async def send(broker: KafkaBroker, topic: Topic, call_id: str, reason: str) -> None:
    await publish(broker, topic, envelope(CallEnded(reason=reason), call_id=call_id, producer="t"))


async def committed(bootstrap: str, topic: Topic, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(TopicPartition(topic.name, 0))
        return offset
    finally:
        await consumer.stop()


async def test_slow_work_of_one_call_holds_up_no_other_and_nothing_is_committed_past_it(
    setup: tuple[KafkaBroker, Topic, str, Calls], kafka_bootstrap: str
) -> None:
    broker, topic, group, calls = setup
    await send(broker, topic, "slow", "slow-1")  # offset 0
    await send(broker, topic, "slow", "slow-2")  # offset 1: waits for slow-1
    await send(broker, topic, "quick", "quick-1")  # offset 2
    await calls.until_started("slow-1")
    calls.release("quick-1")
    calls.release("slow-2")
    await calls.until_started("quick-1")
    await asyncio.sleep(0.5)  # time for a (wrong) commit to land
    assert calls.done == ["quick-1"]  # slow-2 waits for slow-1, quick-1 for nobody
    assert "slow-2" not in calls.started
    assert await committed(kafka_bootstrap, topic, group) is None  # offset 0 is not done

    calls.release("slow-1")
    await calls.lanes.idle()
    assert calls.done == ["quick-1", "slow-1", "slow-2"]
    assert await committed(kafka_bootstrap, topic, group) == 3
