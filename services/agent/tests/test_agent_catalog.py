"""The agent catalog: its migrations, the SQL store and the REST API, on SQLite and PostgreSQL.

The PostgreSQL database is this module's own (other tests of the session expect only their own
tables in theirs), shared by its tests: each test makes agents with ids and numbers of its own,
and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus_agent.catalog.api import agents_router
from voicebus_agent.catalog.migrate import MIGRATIONS
from voicebus_agent.catalog.ports import AgentExistsError, NumberTakenError, UnknownAgentError
from voicebus_agent.catalog.settings import CatalogSettings
from voicebus_agent.catalog.store import SqlAgentCatalog
from voicebus_agent.catalog.tables import AgentRow, Base
from voicebus_agent.offline import demo_files
from voicebus_contracts.agents import (
    AgentConfigured,
    AgentRemoved,
    AgentSpec,
    LanguageModel,
    TurnTaking,
)
from voicebus_sql.engine import create_engine
from voicebus_sql.migrations import differences

CATALOG_TABLES = {"agents", "agent_numbers"}
VERSION_TABLE = "alembic_version_agent"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without the catalog: a new SQLite file, or the session's PostgreSQL one
    (shared with analytics, whose tables and Alembic history are its own)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    MIGRATIONS.upgrade(empty_database_url)
    return empty_database_url


class Agents:
    """Specs with ids and numbers no other test uses."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def spec(self, name: str = "Support", **fields: Any) -> AgentSpec:
        agent_id = f"test-{uuid.uuid4().hex[:12]}"
        self.made.append(agent_id)
        return AgentSpec(agent_id=agent_id, name=name, **fields)

    @staticmethod
    def number() -> str:
        return f"+1{uuid.uuid4().int % 10**10:010d}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def catalog(engine: AsyncEngine) -> SqlAgentCatalog:
    return SqlAgentCatalog(engine)


@pytest.fixture
async def agents(catalog: SqlAgentCatalog) -> AsyncIterator[Agents]:
    made = Agents()
    yield made
    for agent_id in made.made:
        await catalog.delete(agent_id)


# --- migrations -------------------------------------------------------------------------------


def _inspect(url: str, read: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tables_in(url: str) -> set[str]:
    return set(_inspect(url, lambda connection: inspect(connection).get_table_names()))


def test_migrations_go_down_and_up_again_in_their_own_version_table(
    empty_database_url: str,
) -> None:
    MIGRATIONS.upgrade(empty_database_url)
    assert tables_in(empty_database_url) >= CATALOG_TABLES | {VERSION_TABLE}

    MIGRATIONS.downgrade(empty_database_url)
    assert not CATALOG_TABLES & tables_in(empty_database_url)

    MIGRATIONS.upgrade(empty_database_url)
    assert tables_in(empty_database_url) >= CATALOG_TABLES
    assert differences(empty_database_url, Base.metadata, version_table=VERSION_TABLE) == []


# --- the store --------------------------------------------------------------------------------


async def test_a_created_agent_is_read_back_whole(catalog: SqlAgentCatalog, agents: Agents) -> None:
    spec = agents.spec(
        greeting="Hi, support here.",
        llm=LanguageModel(model="gpt-4o-mini", temperature=0.2),
        turn_taking=TurnTaking(end_of_turn_silence_ms=600, backchannel_words=("uh-huh",)),
        variables={"company": "Acme"},
        phone_numbers=(agents.number(),),
    )

    assert await catalog.create(spec) == spec

    assert await catalog.get(spec.agent_id) == spec
    assert await catalog.get(f"{spec.agent_id}-not") is None


async def test_agents_are_listed_by_id(catalog: SqlAgentCatalog, agents: Agents) -> None:
    made = [agents.spec(name=name) for name in ("one", "two", "three")]
    for spec in made:
        await catalog.create(spec)

    ours = [spec for spec in await catalog.list() if spec.agent_id in agents.made]

    assert ours == sorted(made, key=lambda spec: spec.agent_id)


async def test_an_agent_id_is_created_once(catalog: SqlAgentCatalog, agents: Agents) -> None:
    first = await catalog.create(agents.spec(name="first"))

    with pytest.raises(AgentExistsError, match=first.agent_id):
        await catalog.create(first.model_copy(update={"name": "second"}))

    assert await catalog.get(first.agent_id) == first


async def test_replace_changes_the_whole_agent_and_when_it_was_updated(
    catalog: SqlAgentCatalog, agents: Agents, engine: AsyncEngine
) -> None:
    spec = await catalog.create(agents.spec(greeting="Hello", phone_numbers=(agents.number(),)))
    created_at, first_update = await _times(engine, spec.agent_id)

    replaced = await catalog.replace(AgentSpec(agent_id=spec.agent_id, name="Sales"))

    assert await catalog.get(spec.agent_id) == replaced
    assert await catalog.agent_for_number(spec.phone_numbers[0]) is None
    kept_created_at, last_update = await _times(engine, spec.agent_id)
    assert kept_created_at == created_at == first_update
    assert last_update > first_update
    assert last_update.tzinfo == created_at.tzinfo == UTC


async def _times(engine: AsyncEngine, agent_id: str) -> tuple[datetime, datetime]:
    """When the agent was created and last updated."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(AgentRow.created_at, AgentRow.updated_at).where(
                    AgentRow.agent_id == agent_id
                )
            )
        ).one()
    return row.created_at, row.updated_at


async def test_replacing_an_unknown_agent_does_not_create_it(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    spec = agents.spec()

    with pytest.raises(UnknownAgentError, match=spec.agent_id):
        await catalog.replace(spec)

    assert await catalog.get(spec.agent_id) is None


async def test_delete_forgets_the_agent_and_frees_its_numbers(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    number = agents.number()
    gone = await catalog.create(agents.spec(phone_numbers=(number,)))

    assert await catalog.delete(gone.agent_id) is True
    assert await catalog.delete(gone.agent_id) is False
    assert await catalog.get(gone.agent_id) is None

    heir = await catalog.create(agents.spec(phone_numbers=(number,)))
    assert await catalog.agent_for_number(number) == heir


async def test_a_number_reaches_its_agent(catalog: SqlAgentCatalog, agents: Agents) -> None:
    numbers = (agents.number(), agents.number())
    spec = await catalog.create(agents.spec(phone_numbers=numbers))

    assert await catalog.agent_for_number(numbers[0]) == spec
    assert await catalog.agent_for_number(numbers[1]) == spec
    assert await catalog.agent_for_number(agents.number()) is None


async def test_a_new_agent_cannot_take_a_number_and_is_not_created(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    number = agents.number()
    holder = await catalog.create(agents.spec(phone_numbers=(number,)))
    newcomer = agents.spec(phone_numbers=(agents.number(), number))

    with pytest.raises(NumberTakenError) as taken:
        await catalog.create(newcomer)

    assert (taken.value.number, taken.value.agent_id) == (number, holder.agent_id)
    assert await catalog.get(newcomer.agent_id) is None
    assert await catalog.agent_for_number(newcomer.phone_numbers[0]) is None


async def test_a_replaced_agent_cannot_take_a_number_and_stays_as_it_was(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    number = agents.number()
    holder = await catalog.create(agents.spec(phone_numbers=(number,)))
    before = await catalog.create(agents.spec(phone_numbers=(agents.number(),)))

    with pytest.raises(NumberTakenError, match=holder.agent_id):
        await catalog.replace(before.model_copy(update={"phone_numbers": (number,)}))

    assert await catalog.get(before.agent_id) == before
    assert await catalog.agent_for_number(before.phone_numbers[0]) == before
    assert await catalog.agent_for_number(number) == holder


async def test_an_agent_keeps_its_own_numbers_when_replaced(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    number = agents.number()
    spec = await catalog.create(agents.spec(phone_numbers=(number, number)))

    replaced = await catalog.replace(spec.model_copy(update={"name": "Renamed"}))

    assert await catalog.agent_for_number(number) == replaced


async def test_two_agents_claiming_a_number_at_once_do_not_both_get_it(
    catalog: SqlAgentCatalog, agents: Agents
) -> None:
    number = agents.number()
    claims = [agents.spec(phone_numbers=(number,)) for _ in range(2)]

    outcomes = await asyncio.gather(
        *(catalog.create(spec) for spec in claims), return_exceptions=True
    )

    taken = [outcome for outcome in outcomes if isinstance(outcome, NumberTakenError)]
    assert len(taken) == 1, outcomes
    assert await catalog.agent_for_number(number) in claims


# --- the API ----------------------------------------------------------------------------------

Announced = list[AgentConfigured | AgentRemoved]


@pytest.fixture
def announced() -> Announced:
    return []


@pytest.fixture
async def api(catalog: SqlAgentCatalog, announced: Announced) -> AsyncIterator[httpx.AsyncClient]:
    async def announce(event: AgentConfigured | AgentRemoved) -> None:
        announced.append(event)

    app = FastAPI()
    app.include_router(agents_router(catalog, announce))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        yield client


def body(spec: AgentSpec) -> Any:
    return spec.model_dump(mode="json")


async def test_an_agent_is_created_read_replaced_and_deleted_and_each_change_announced(
    api: httpx.AsyncClient, agents: Agents, announced: Announced
) -> None:
    spec = agents.spec(greeting="Hello", phone_numbers=(agents.number(),))
    path = f"/api/agents/{spec.agent_id}"

    created = await api.post("/api/agents", json=body(spec))
    assert (created.status_code, created.json()) == (201, body(spec))

    listed = await api.get("/api/agents")
    assert listed.status_code == 200
    assert body(spec) in listed.json()
    assert (await api.get(path)).json() == body(spec)

    changed = spec.model_copy(update={"name": "Sales", "greeting": None})
    replaced = await api.put(path, json=body(changed))
    assert (replaced.status_code, replaced.json()) == (200, body(changed))
    assert (await api.get(path)).json() == body(changed)

    deleted = await api.delete(path)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await api.get(path)).status_code == 404

    assert announced == [
        AgentConfigured(agent=spec),
        AgentConfigured(agent=changed),
        AgentRemoved(agent_id=spec.agent_id),
    ]


async def test_unknown_agents_are_404(
    api: httpx.AsyncClient, agents: Agents, announced: Announced
) -> None:
    spec = agents.spec()
    path = f"/api/agents/{spec.agent_id}"

    for response in (
        await api.get(path),
        await api.put(path, json=body(spec)),
        await api.delete(path),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": f"no agent {spec.agent_id!r}"}
    assert announced == []


async def test_conflicts_are_409_and_name_what_is_taken(
    api: httpx.AsyncClient, agents: Agents, announced: Announced
) -> None:
    number = agents.number()
    holder = agents.spec(phone_numbers=(number,))
    await api.post("/api/agents", json=body(holder))
    other = agents.spec()
    await api.post("/api/agents", json=body(other))
    del announced[:]

    again = await api.post("/api/agents", json=body(holder))
    newcomer = await api.post("/api/agents", json=body(agents.spec(phone_numbers=(number,))))
    replaced = await api.put(
        f"/api/agents/{other.agent_id}",
        json=body(other.model_copy(update={"phone_numbers": (number,)})),
    )

    assert (again.status_code, again.json()) == (
        409,
        {"detail": f"agent {holder.agent_id!r} already exists"},
    )
    taken = {"detail": f"{number} already reaches agent {holder.agent_id!r}"}
    assert (newcomer.status_code, newcomer.json()) == (409, taken)
    assert (replaced.status_code, replaced.json()) == (409, taken)
    assert announced == []


async def test_an_invalid_agent_is_422_with_its_field_errors(
    api: httpx.AsyncClient, announced: Announced
) -> None:
    response = await api.post(
        "/api/agents",
        json={"agent_id": "Not An Id", "name": "x", "phone_numbers": ["555"], "colour": "red"},
    )

    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in response.json()["detail"]} == {
        ("body", "agent_id"),
        ("body", "phone_numbers", 0),
        ("body", "colour"),
    }
    assert announced == []


async def test_a_replacement_for_another_agent_id_is_400(
    api: httpx.AsyncClient, agents: Agents, announced: Announced
) -> None:
    spec = agents.spec()
    await api.post("/api/agents", json=body(spec))
    del announced[:]
    intruder = agents.spec()

    response = await api.put(f"/api/agents/{spec.agent_id}", json=body(intruder))

    assert response.status_code == 400
    assert intruder.agent_id in response.json()["detail"]
    assert (await api.get(f"/api/agents/{spec.agent_id}")).json() == body(spec)
    assert announced == []


# --- settings ---------------------------------------------------------------------------------


def test_catalog_settings_read_the_agent_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOICEBUS_AGENT_API_HOST", "0.0.0.0")
    monkeypatch.setenv("VOICEBUS_AGENT_API_PORT", "9000")
    monkeypatch.setenv("VOICEBUS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VOICEBUS_DATABASE_URL", raising=False)

    settings = CatalogSettings()

    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 9000)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'voicebus.db'}"
    assert CatalogSettings(api_port=8090).api_port == 8090


def test_catalog_settings_default_to_the_local_api(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VOICEBUS_AGENT_API_HOST", "VOICEBUS_AGENT_API_PORT"):
        monkeypatch.delenv(name, raising=False)

    settings = CatalogSettings()

    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8082)


async def test_the_agent_a_number_reaches_is_found_by_the_number(
    api: httpx.AsyncClient, agents: Agents
) -> None:
    number = agents.number()
    holder = agents.spec(phone_numbers=(number,))
    await api.post("/api/agents", json=body(holder))
    found = await api.get("/api/agents", params={"phone_number": number})
    assert [a["agent_id"] for a in found.json()] == [holder.agent_id]
    nobody = await api.get("/api/agents", params={"phone_number": agents.number()})
    assert nobody.json() == []
    wrong = await api.get("/api/agents", params={"phone_number": "555-0100"})
    assert wrong.status_code == 422


async def test_an_agent_with_a_workflow_is_stored_whole_and_a_broken_workflow_is_422(
    api: httpx.AsyncClient, agents: Agents, announced: Announced
) -> None:
    workflow = demo_files().workflow.model_dump(mode="json")
    spec = agents.spec()
    created = await api.post("/api/agents", json=body(spec) | {"workflow": workflow})
    assert created.status_code == 201, created.text
    stored = await api.get(f"/api/agents/{spec.agent_id}")
    assert stored.json()["workflow"] == workflow

    broken = workflow | {"start": "nowhere"}
    refused = await api.post("/api/agents", json=body(agents.spec()) | {"workflow": broken})
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert tuple(error["loc"]) == ("body", "workflow")
    assert "the start node 'nowhere' is not one of the nodes" in error["msg"]
