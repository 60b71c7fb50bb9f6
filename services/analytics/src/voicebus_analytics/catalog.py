"""The agent catalog as analytics reads it: every agent announced on `voicebus.agents` (read
whole, from its beginning, by each instance), and how far it has been read.

A call's post-call results depend on its agent (its extraction schema, success criterion, model
and webhook), and a call that ended while analytics was down is concluded when it starts: before
that, the catalog must have been read as far as it went at start (`read_to_end`), or the call
would be concluded as if its agent had none of them.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from voicebus_contracts import Envelope
from voicebus_contracts.agents import AgentEvent, AgentSpec
from voicebus_contracts.topics import AGENTS
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options

log = logging.getLogger(__name__)


class AgentCatalog:
    """The announced agents (an AgentDirectory), with the offset each partition of the catalog
    has been read to."""

    def __init__(self) -> None:
        self._directory = AgentDirectory()
        self._read: dict[int, int] = {}
        """Per partition, the offset just past the last announcement heard."""
        self._progress = asyncio.Condition()

    def get(self, agent_id: str) -> AgentSpec | None:
        return self._directory.get(agent_id)

    def follow(self, broker: KafkaBroker) -> None:
        """Keep up with the catalog on `broker`, from its first announcement."""

        @broker.subscriber(AGENTS.name, **consumer_options(None, from_beginning=True))
        async def on_agent(env: Envelope[AgentEvent], message: KafkaMessage) -> None:
            self._directory.heard(env)
            raw = message.raw_message
            record = raw[-1] if isinstance(raw, tuple) else raw
            async with self._progress:
                self._read[record.partition] = record.offset + 1
                self._progress.notify_all()

    async def read_to_end(self, bootstrap: str, *, timeout_s: float) -> bool:
        """Return once every announcement on the catalog now has been heard: True; False
        (logged) if that took longer than `timeout_s`, or the broker did not say where the
        catalog ends."""
        try:
            bounds = await _bounds(bootstrap)
        except (KafkaError, OSError) as error:
            log.warning("the agent catalog's end is not known (%s): not waiting for it", error)
            return False

        def read() -> bool:
            return all(self._read.get(p, first) >= end for p, (first, end) in bounds.items())

        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(read), timeout_s)
        except TimeoutError:
            log.warning("the agent catalog was not read within %.0f s: going on", timeout_s)
            return False
        return True


async def _bounds(bootstrap: str) -> dict[int, tuple[int, int]]:
    """Each partition of the catalog's first and next offsets (equal: nothing to read)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="voicebus-analytics-catalog")
    await consumer.start()
    try:
        partitions = [TopicPartition(AGENTS.name, p) for p in range(AGENTS.partitions)]
        first = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: (first[tp], end[tp]) for tp in partitions}
