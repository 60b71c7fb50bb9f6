"""The agent service as it runs: the worker and the agents API in one process, on a real broker,
Redis and a migrated SQLite catalog; what the catalog holds, and what the API changes, reaches
the bus."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from faststream.kafka import KafkaBroker

from voicebus_agent.app import create_service
from voicebus_agent.catalog.migrate import MIGRATIONS
from voicebus_agent.catalog.settings import CatalogSettings
from voicebus_agent.catalog.store import SqlAgentCatalog
from voicebus_agent.settings import AgentSettings
from voicebus_contracts import Envelope
from voicebus_contracts.agents import AgentEvent, AgentSpec
from voicebus_contracts.topics import AGENTS
from voicebus_devstack.polling import until
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def catalog_settings(tmp_path: Path) -> CatalogSettings:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}"
    MIGRATIONS.upgrade(url)
    return CatalogSettings(database_url=url, data_dir=tmp_path)


@pytest.fixture
async def follower(kafka_bootstrap: str) -> AsyncIterator[tuple[AgentDirectory, list[str]]]:
    """What another service learns of the catalog from the bus, and the ids announced."""
    await ensure_topics(kafka_bootstrap, [AGENTS])
    directory, announced = AgentDirectory(), []
    broker: KafkaBroker = make_broker(kafka_bootstrap, client_id=f"follower-{uuid.uuid4().hex}")

    @broker.subscriber(AGENTS.name, **consumer_options(None, from_beginning=True))
    async def on_agents(env: Envelope[AgentEvent]) -> None:
        directory.heard(env)
        announced.append(env.call_id)

    await broker.start()
    yield directory, announced
    await broker.stop()


async def test_stored_agents_are_announced_at_start_and_new_ones_when_created(
    kafka_bootstrap: str,
    redis_url: str,
    catalog_settings: CatalogSettings,
    follower: tuple[AgentDirectory, list[str]],
) -> None:
    directory, announced = follower
    run = uuid.uuid4().hex[:8]
    stored, created = f"support-{run}", f"sales-{run}"
    engine = create_engine(catalog_settings.database_url)
    try:
        await SqlAgentCatalog(engine).create(AgentSpec(agent_id=stored, name="Support"))
    finally:
        await engine.dispose()
    bus = BusSettings(kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, instance_id="agent-t")

    app = create_service(settings=AgentSettings(), catalog_settings=catalog_settings, bus=bus)
    async with app.router.lifespan_context(app):
        await until(
            lambda: directory.get(stored) is not None,
            what="the stored agent announced",
            timeout_s=10,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            spec = {"agent_id": created, "name": "Sales", "greeting": "Sales, hello."}
            response = await client.post("/api/agents", json=spec)
            assert response.status_code == 201, response.text
            listed = (await client.get("/api/agents")).json()
        await until(
            lambda: directory.get(created) is not None,
            what="the new agent announced",
            timeout_s=10,
        )

    assert {agent["agent_id"] for agent in listed} == {stored, created}
    sales = directory.get(created)
    assert sales is not None
    assert sales.greeting == "Sales, hello."
    assert (announced.count(stored), announced.count(created)) == (1, 1)
