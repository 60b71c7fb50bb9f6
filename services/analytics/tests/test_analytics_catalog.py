"""The agent catalog as analytics reads it, on the real broker: read to where it ended before
the calls cut short at the last stop are concluded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from faststream.kafka import KafkaBroker

from voicebus_analytics.catalog import AgentCatalog
from voicebus_contracts import envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec
from voicebus_contracts.topics import AGENTS
from voicebus_runtime.bus import ensure_topics, make_broker, publish

AGENTS_ANNOUNCED = 20


@pytest.fixture
async def announcer(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    await ensure_topics(kafka_bootstrap, [AGENTS])
    broker = make_broker(kafka_bootstrap, client_id=f"announcer-{uuid.uuid4().hex}")
    await broker.start()
    yield broker
    await broker.stop()


async def announce(broker: KafkaBroker, agent_id: str, name: str) -> None:
    agent = AgentSpec(agent_id=agent_id, name=name)
    await publish(
        broker, AGENTS, envelope(AgentConfigured(agent=agent), call_id=agent_id, producer="agent")
    )


async def test_the_catalog_is_read_to_where_it_ended_when_asked(
    kafka_bootstrap: str, announcer: KafkaBroker
) -> None:
    run = uuid.uuid4().hex[:8]
    ids = [f"agent-{run}-{n}" for n in range(AGENTS_ANNOUNCED)]
    for agent_id in ids:
        await announce(announcer, agent_id, "First")
    await announce(announcer, ids[0], "Renamed")
    catalog = AgentCatalog()
    reader = make_broker(kafka_bootstrap, client_id=f"analytics-{run}")
    catalog.follow(reader)
    await reader.start()
    try:
        assert await catalog.read_to_end(kafka_bootstrap, timeout_s=30)

        assert all(catalog.get(agent_id) is not None for agent_id in ids)
        renamed = catalog.get(ids[0])
        assert renamed is not None
        assert renamed.name == "Renamed"
    finally:
        await reader.stop()


async def test_a_catalog_not_read_is_not_waited_for_longer_than_asked(
    kafka_bootstrap: str, announcer: KafkaBroker
) -> None:
    await announce(announcer, f"agent-{uuid.uuid4().hex[:8]}", "Unread")

    assert not await AgentCatalog().read_to_end(kafka_bootstrap, timeout_s=0.1)
