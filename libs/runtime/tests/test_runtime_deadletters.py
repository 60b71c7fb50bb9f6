"""Dead letters over a real Kafka-protocol broker: a message a consumer cannot decode or handle
is buried with why, the partition goes on, and the operator's tool lists and replays it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from voicebus_contracts import CallEnded, CallEvent, Envelope, envelope
from voicebus_contracts.topics import DEAD_LETTERS, Topic
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish
from voicebus_runtime.deadletters import DeadLetter, DeadLetters, read, replay
from voicebus_runtime.lanes import CallLanes

CONSUMER = "deadletters-test"
WAIT_S = 20.0


@dataclass
class Handled:
    """The reasons of the call ends handled; the handler fails on `failing` ones."""

    failing: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, env: Envelope[CallEvent]) -> None:
        assert isinstance(env.event, CallEnded)
        if env.event.reason in self.failing:
            raise RuntimeError(f"cannot handle {env.event.reason}")
        self.reasons.append(env.event.reason)
        self.arrived.set()

    async def until(self, reason: str) -> None:
        async def seen() -> None:
            while reason not in self.reasons:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(seen(), WAIT_S)


@pytest.fixture
async def topic(kafka_bootstrap: str) -> Topic:
    topic = Topic(f"test.{uuid.uuid4().hex}", 1, "test calls")
    await ensure_topics(kafka_bootstrap, [topic, DEAD_LETTERS])
    return topic


@pytest.fixture
async def broker(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(kafka_bootstrap, client_id=CONSUMER)
    async with broker:
        yield broker


def ended(reason: str, call_id: str = "CA-dead") -> Envelope[CallEnded]:
    return envelope(CallEnded(reason=reason), call_id=call_id, producer="test")


async def buried(kafka_bootstrap: str, topic: Topic, count: int) -> list[DeadLetter]:
    """The dead letters of `topic`, once there are `count`."""

    async def poll() -> list[DeadLetter]:
        while True:
            letters = [DeadLetter.of(r) for r in await read(kafka_bootstrap, topic=topic.name)]
            if len(letters) >= count:
                return letters
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), WAIT_S)


async def test_an_undecodable_message_is_buried_and_the_partition_goes_on(
    kafka_bootstrap: str, topic: Topic, broker: KafkaBroker
) -> None:
    handled = Handled()
    broker.subscriber(topic.name, **consumer_options(f"g-{uuid.uuid4().hex}"))(handled.handle)
    await broker.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic.name, b"{not json", key=b"CA-dead", headers=[("origin", b"fuzz")]
        )
    finally:
        await producer.stop()
    await publish(broker, topic, ended("after the poison"))

    await handled.until("after the poison")
    [letter] = await buried(kafka_bootstrap, topic, 1)
    assert (letter.topic, letter.partition, letter.source_offset) == (topic.name, 0, 0)
    assert letter.consumer == CONSUMER
    assert "ValidationError" in letter.error
    assert letter.key == "CA-dead"
    [record] = await read(kafka_bootstrap, topic=topic.name)
    assert record.value == b"{not json"
    assert ("origin", b"fuzz") in record.headers  # kept as it came


async def test_a_message_whose_handling_fails_is_buried_then_replayed(
    kafka_bootstrap: str, topic: Topic, broker: KafkaBroker
) -> None:
    handled = Handled(failing={"poison"})
    broker.subscriber(topic.name, **consumer_options(f"g-{uuid.uuid4().hex}"))(handled.handle)
    await broker.start()
    await publish(broker, topic, ended("poison"))
    await publish(broker, topic, ended("next"))
    await handled.until("next")
    [letter] = await buried(kafka_bootstrap, topic, 1)
    assert letter.error == "RuntimeError: cannot handle poison"

    handled.failing.clear()  # the cause is fixed
    assert await replay(kafka_bootstrap, await read(kafka_bootstrap, topic=topic.name)) == 1
    await handled.until("poison")
    assert handled.reasons == ["next", "poison"]


async def test_work_that_fails_in_its_lane_is_buried(
    kafka_bootstrap: str, topic: Topic, broker: KafkaBroker
) -> None:
    handled = Handled(failing={"poison"})
    lanes = CallLanes(dead_letters=DeadLetters(broker, consumer=CONSUMER))

    @broker.subscriber(topic.name, **consumer_options(f"g-{uuid.uuid4().hex}", commit="by_lanes"))
    async def on_call(env: Envelope[CallEvent], message: KafkaMessage) -> None:
        await lanes.submit(message, env.call_id, lambda: handled.handle(env))

    await broker.start()
    await publish(broker, topic, ended("poison"))
    await publish(broker, topic, ended("next"))
    await handled.until("next")
    [letter] = await buried(kafka_bootstrap, topic, 1)
    assert (letter.source_offset, letter.error) == (0, "RuntimeError: cannot handle poison")


async def test_the_tool_lists_and_replays_by_offset(
    kafka_bootstrap: str, topic: Topic, broker: KafkaBroker
) -> None:
    await broker.start()
    dead_letters = DeadLetters(broker, consumer=CONSUMER)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, b"first", key=b"CA-1")
        await producer.send_and_wait(topic.name, b"second", key=b"CA-2")
    finally:
        await producer.stop()
    for record in await consumed(kafka_bootstrap, topic, 2):
        await dead_letters.bury(record, ValueError(record.value.decode()))
    letters = await buried(kafka_bootstrap, topic, 2)

    env = {**os.environ, "VOICEBUS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    listed = await run_tool(env, "list", "--topic", topic.name)
    assert [json.loads(line)["error"] for line in listed.splitlines()] == [
        "ValueError: first",
        "ValueError: second",
    ]
    second = letters[1].offset
    assert await run_tool(env, "replay", "--offset", str(second)) == "replayed 1 dead letters\n"
    replayed = (await consumed(kafka_bootstrap, topic, 3))[-1]
    assert (replayed.key, replayed.value) == (b"CA-2", b"second")
    assert not [k for k, _ in replayed.headers if k.startswith("voicebus-dead-")]


async def consumed(
    kafka_bootstrap: str, topic: Topic, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first `count` messages of `topic`."""
    consumer = AIOKafkaConsumer(
        topic.name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(WAIT_S):
            async for record in consumer:
                records.append(record)
                if len(records) == count:
                    return records
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


async def run_tool(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "voicebus_runtime.deadletters",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return out.decode()


class Publishes:
    """A broker that keeps what is published through it."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, body: bytes, topic: str, **_: object) -> None:
        self.published.append(topic)


async def test_a_dead_letter_that_fails_again_is_not_buried_again() -> None:
    broker = Publishes()
    dead_letters = DeadLetters(cast(KafkaBroker, broker), consumer=CONSUMER)
    again = ConsumerRecord(
        topic=DEAD_LETTERS.name,
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"CA-1",
        value=b"{}",
        checksum=None,
        serialized_key_size=4,
        serialized_value_size=2,
        headers=(),
    )
    await dead_letters.bury(again, RuntimeError("a consumer of dead letters failed"))
    assert broker.published == []
