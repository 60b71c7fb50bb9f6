"""The agent catalog in SQL (PostgreSQL or SQLite), through SQLAlchemy's asyncio engine.

An agent is one row holding its whole spec as JSON; the numbers that reach agents have a table of
their own, whose primary key is what makes a number reach one agent at most.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voicebus_agent.catalog.ports import AgentExistsError, NumberTakenError, UnknownAgentError
from voicebus_agent.catalog.tables import AgentNumberRow, AgentRow, Base
from voicebus_contracts.agents import AgentSpec


class SqlAgentCatalog:
    """The `AgentCatalog` in the tables of `tables`, created by the migrations."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert: Callable[[type[Base]], postgresql.Insert | sqlite.Insert] = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )

    async def list(self) -> builtins.list[AgentSpec]:
        async with self._engine.connect() as connection:
            specs = await connection.scalars(select(AgentRow.spec).order_by(AgentRow.agent_id))
            return [AgentSpec.model_validate_json(spec) for spec in specs]

    async def get(self, agent_id: str) -> AgentSpec | None:
        async with self._engine.connect() as connection:
            spec = await connection.scalar(
                select(AgentRow.spec).where(AgentRow.agent_id == agent_id)
            )
        return None if spec is None else AgentSpec.model_validate_json(spec)

    async def create(self, spec: AgentSpec) -> AgentSpec:
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            created = await connection.scalar(
                self._insert(AgentRow)
                .values(
                    agent_id=spec.agent_id,
                    spec=spec.model_dump_json(),
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["agent_id"])
                .returning(AgentRow.agent_id)
            )
            if created is None:
                raise AgentExistsError(spec.agent_id)
            await self._claim_numbers(connection, spec)
        return spec

    async def replace(self, spec: AgentSpec) -> AgentSpec:
        async with self._engine.begin() as connection:
            replaced = await connection.scalar(
                update(AgentRow)
                .where(AgentRow.agent_id == spec.agent_id)
                .values(spec=spec.model_dump_json(), updated_at=datetime.now(UTC))
                .returning(AgentRow.agent_id)
            )
            if replaced is None:
                raise UnknownAgentError(spec.agent_id)
            await connection.execute(
                delete(AgentNumberRow).where(AgentNumberRow.agent_id == spec.agent_id)
            )
            await self._claim_numbers(connection, spec)
        return spec

    async def delete(self, agent_id: str) -> bool:
        # Its numbers go with it: their foreign key cascades.
        async with self._engine.begin() as connection:
            deleted = await connection.scalar(
                delete(AgentRow).where(AgentRow.agent_id == agent_id).returning(AgentRow.agent_id)
            )
        return deleted is not None

    async def agent_for_number(self, number: str) -> AgentSpec | None:
        async with self._engine.connect() as connection:
            spec = await connection.scalar(
                select(AgentRow.spec)
                .join(AgentNumberRow, AgentNumberRow.agent_id == AgentRow.agent_id)
                .where(AgentNumberRow.number == number)
            )
        return None if spec is None else AgentSpec.model_validate_json(spec)

    async def _claim_numbers(self, connection: AsyncConnection, spec: AgentSpec) -> None:
        """Make `spec`'s numbers reach its agent, or raise NumberTakenError for the first that
        reaches another one (the caller's transaction then rolls back).

        One upsert claims the free numbers and, through a no-op update of the taken ones,
        returns who holds them: the check and the claim are one statement, so two requests
        claiming a number at once cannot both get it. Sorted, so that such requests lock the
        numbers in the same order and cannot deadlock.
        """
        numbers = sorted(set(spec.phone_numbers))
        if not numbers:
            return
        claim = self._insert(AgentNumberRow).values(
            [{"number": number, "agent_id": spec.agent_id} for number in numbers]
        )
        claimed = await connection.execute(
            claim.on_conflict_do_update(
                index_elements=["number"],
                set_={"agent_id": AgentNumberRow.__table__.c.agent_id},
            ).returning(AgentNumberRow.number, AgentNumberRow.agent_id)
        )
        holders = {row.number: row.agent_id for row in claimed}
        for number in spec.phone_numbers:
            if holders[number] != spec.agent_id:
                raise NumberTakenError(number, holders[number])
