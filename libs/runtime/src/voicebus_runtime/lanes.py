"""Handling a consumer's messages call by call: each call's messages in order, different calls'
at the same time, and a partition's offset committed only past messages whose handling is over.

A subscriber handles its messages one at a time, so one slow message (a reply streaming from a
language model) would hold up every call of the worker. Submitted to `CallLanes`, the handler
returns at once; the work runs in its call's lane, and the offsets of a partition are committed
as the earliest ones finish: a worker that dies leaves uncommitted whatever it had not finished,
and the next owner of the partition handles it again (at least once, as before).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.message import KafkaMessage

from voicebus_runtime.deadletters import DeadLetters

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
"""Messages handled at once; the subscriber waits (and so stops fetching) beyond that."""


class CallLanes:
    """One lane per call: work in a lane runs in the order it was given."""

    def __init__(
        self, *, dead_letters: DeadLetters | None = None, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self.dead_letters = dead_letters
        """Where a message whose work fails is buried; None: it is only logged."""
        self._lanes: dict[str, asyncio.Lock] = {}
        self._users: defaultdict[str, int] = defaultdict(int)
        self._room = asyncio.Semaphore(max_in_flight)
        self._running: set[asyncio.Task[None]] = set()
        self._pending: defaultdict[TopicPartition, dict[int, bool]] = defaultdict(dict)
        """Per partition, the offsets submitted and not committed yet, in order: done or not."""
        self._commit_lock = asyncio.Lock()

    @asynccontextmanager
    async def lane(self, call_id: str) -> AsyncIterator[None]:
        """Hold call `call_id`'s lane: its other work waits until this is done."""
        self._users[call_id] += 1
        lock = self._lanes.setdefault(call_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            self._users[call_id] -= 1
            if not self._users[call_id]:
                del self._users[call_id], self._lanes[call_id]

    async def submit(
        self, message: KafkaMessage, call_id: str, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run `work` in the call's lane, and commit `message`'s offset once it and every
        earlier message of its partition are done. Returns once the work is under way (or
        waits while too much is)."""
        await self._room.acquire()
        record = message.raw_message
        if isinstance(record, tuple):
            raise TypeError("a batch subscriber cannot hand its messages to lanes")
        partition = TopicPartition(record.topic, record.partition)
        pending = self._pending[partition]
        if pending and record.offset <= next(reversed(pending)):
            pending.clear()  # the partition was assigned again, from its committed offset
        pending[record.offset] = False
        # Tasks start in the order they are made, and a lane's lock serves its waiters in turn:
        # a call's work runs in the order it was submitted.
        task = asyncio.create_task(self._run(record, call_id, work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda _: self._finished(message.consumer, partition, record.offset))

    async def idle(self) -> None:
        """Wait until every piece of work submitted so far is done (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _run(
        self, record: ConsumerRecord[Any, Any], call_id: str, work: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            async with self.lane(call_id):
                await work()
        except Exception as failed:
            if self.dead_letters is None:
                log.exception("call %s: a message was not handled", call_id)
            else:
                await self.dead_letters.bury(record, failed)
        finally:
            self._room.release()

    def _finished(self, consumer: object, partition: TopicPartition, offset: int) -> None:
        pending = self._pending[partition]
        if offset not in pending:
            return  # from before the partition was assigned again
        pending[offset] = True
        last = None
        while pending and pending[first := next(iter(pending))]:
            del pending[first]
            last = first
        if last is not None and isinstance(consumer, AIOKafkaConsumer):
            task = asyncio.create_task(self._commit(consumer, partition, last + 1))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, to: int) -> None:
        async with self._commit_lock:  # commits land in order: the offset never goes back
            try:
                await consumer.commit({partition: to})
            except (KafkaError, AssertionError) as failed:  # the partition went to another worker
                log.info("offset %d of %s not committed: %s", to, partition, failed)
