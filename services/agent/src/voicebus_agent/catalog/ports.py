"""The catalog's port: where agents are kept, and the conflicts a change can run into."""

from __future__ import annotations

import builtins
from typing import Protocol

from voicebus_contracts.agents import AgentSpec


class AgentExistsError(Exception):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} already exists")
        self.agent_id = agent_id


class UnknownAgentError(Exception):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"no agent {agent_id!r}")
        self.agent_id = agent_id


class NumberTakenError(Exception):
    """A number a caller dials reaches one agent at most."""

    def __init__(self, number: str, agent_id: str) -> None:
        super().__init__(f"{number} already reaches agent {agent_id!r}")
        self.number = number
        self.agent_id = agent_id
        """The agent the number reaches."""


class AgentCatalog(Protocol):
    """The agents, by id, and the numbers that reach them."""

    async def list(self) -> builtins.list[AgentSpec]:
        """Every agent, by agent id."""
        ...

    async def get(self, agent_id: str) -> AgentSpec | None: ...

    async def create(self, spec: AgentSpec) -> AgentSpec:
        """Keep a new agent; AgentExistsError if its id is taken, NumberTakenError if one of
        its numbers reaches another agent."""
        ...

    async def replace(self, spec: AgentSpec) -> AgentSpec:
        """Make `spec` the whole of the agent with its id; UnknownAgentError if there is none,
        NumberTakenError if one of its numbers reaches another agent."""
        ...

    async def delete(self, agent_id: str) -> bool:
        """Forget the agent and its numbers; False if there was no such agent."""
        ...

    async def agent_for_number(self, number: str) -> AgentSpec | None:
        """The agent a call to `number` reaches, if any."""
        ...
