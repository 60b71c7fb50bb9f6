"""The agent catalog as announced on `voicebus.agents`, kept in memory by each service that
needs to know the agent of a call (its turn-taking, its speech providers, its prompt)."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from voicebus_contracts import Envelope
from voicebus_contracts.agents import AgentConfigured, AgentEvent, AgentRemoved, AgentSpec
from voicebus_contracts.topics import AGENTS
from voicebus_runtime.bus import consumer_options

log = logging.getLogger(__name__)


class AgentDirectory:
    """Every announced agent, by id and by phone number; the latest announcement wins."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentSpec] = {}

    def get(self, agent_id: str) -> AgentSpec | None:
        return self._agents.get(agent_id)

    def for_number(self, number: str) -> AgentSpec | None:
        """The agent that answers calls to `number`, if one claims it."""
        return next((a for a in self._agents.values() if number in a.phone_numbers), None)

    def heard(self, env: Envelope[AgentEvent]) -> None:
        match env.event:
            case AgentConfigured(agent=agent):
                self._agents[agent.agent_id] = agent
                log.info("agent %s configured", agent.agent_id)
            case AgentRemoved(agent_id=agent_id):
                self._agents.pop(agent_id, None)
                log.info("agent %s removed", agent_id)

    def follow(self, broker: KafkaBroker) -> None:
        """Keep up with the catalog on `broker`, from its first announcement: every instance
        reads all of it (no consumer group)."""
        broker.subscriber(AGENTS.name, **consumer_options(None, from_beginning=True))(self.heard)
