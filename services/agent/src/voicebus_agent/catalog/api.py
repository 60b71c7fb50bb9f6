"""The catalog's REST API: agents listed, read, created, replaced and deleted under /api/agents.

The catalog is the source of truth; each change, once stored, is announced so that every service
updates the agents it keeps in memory. An announcement that fails leaves the change stored and
answers 500; the service announces every agent again when it starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from voicebus_agent.catalog.ports import (
    AgentCatalog,
    AgentExistsError,
    NumberTakenError,
    UnknownAgentError,
)
from voicebus_contracts.agents import AGENT_ID_PATTERN, AgentConfigured, AgentRemoved, AgentSpec
from voicebus_contracts.events import E164_PATTERN

Announce = Callable[[AgentConfigured | AgentRemoved], Awaitable[None]]
"""Puts a change of the catalog on the bus."""

AgentId = Annotated[str, Path(pattern=AGENT_ID_PATTERN)]
"""An agent's id in a path: refused (422) unless it could name an agent."""

_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "No agent with this id"}}
_NUMBER_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "One of the agent's numbers already reaches another agent"}
}


def agents_router(catalog: AgentCatalog, announce: Announce) -> APIRouter:
    """The routes of /api/agents over `catalog`, announcing each change with `announce`."""
    router = APIRouter(prefix="/api/agents", tags=["agents"])

    @router.get("")
    async def list_agents(
        phone_number: Annotated[str | None, Query(pattern=E164_PATTERN)] = None,
    ) -> list[AgentSpec]:
        """Every agent, by agent id; with `phone_number`, the agent that number reaches (none
        when no agent claims it)."""
        if phone_number is None:
            return await catalog.list()
        agent = await catalog.agent_for_number(phone_number)
        return [] if agent is None else [agent]

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        responses={409: {"description": "The agent id is taken, or one of its numbers"}},
    )
    async def create_agent(spec: AgentSpec) -> AgentSpec:
        try:
            created = await catalog.create(spec)
        except (AgentExistsError, NumberTakenError) as conflict:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(conflict)) from None
        await announce(AgentConfigured(agent=created))
        return created

    @router.get("/{agent_id}", responses=_UNKNOWN)
    async def get_agent(agent_id: AgentId) -> AgentSpec:
        spec = await catalog.get(agent_id)
        if spec is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(UnknownAgentError(agent_id)))
        return spec

    @router.put(
        "/{agent_id}",
        responses={
            400: {"description": "The body's agent id is not the one in the path"},
            **_UNKNOWN,
            **_NUMBER_TAKEN,
        },
    )
    async def replace_agent(agent_id: AgentId, spec: AgentSpec) -> AgentSpec:
        """Make the body the whole of the agent: what it leaves out takes its default."""
        if spec.agent_id != agent_id:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                detail=f"the body is agent {spec.agent_id!r}, the path agent {agent_id!r}",
            )
        try:
            replaced = await catalog.replace(spec)
        except UnknownAgentError as unknown:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(unknown)) from None
        except NumberTakenError as taken:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(taken)) from None
        await announce(AgentConfigured(agent=replaced))
        return replaced

    @router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_UNKNOWN)
    async def delete_agent(agent_id: AgentId) -> None:
        if not await catalog.delete(agent_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(UnknownAgentError(agent_id)))
        await announce(AgentRemoved(agent_id=agent_id))

    return router
