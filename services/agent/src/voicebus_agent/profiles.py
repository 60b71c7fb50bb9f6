"""How the agent of a call behaves: the service's settings, with what its agent sets itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from voicebus_agent.ports import Responder
from voicebus_agent.settings import AgentSettings
from voicebus_agent.turns import Backchannels
from voicebus_agent.workflow.progress import Workflows
from voicebus_contracts.agents import (
    AgentSpec,
    HttpTool,
    KnowledgeBaseUse,
    LanguageModel,
    Voicemail,
    Workflow,
)
from voicebus_runtime.agents import AgentDirectory


class ResponderFactory(Protocol):
    """Makes the responder of a model, given its system prompt, HTTP tools, knowledge and
    workflow."""

    def __call__(
        self,
        model: LanguageModel,
        system_prompt: str,
        *,
        http_tools: Sequence[HttpTool] = (),
        knowledge: KnowledgeBaseUse | None = None,
        workflow: Workflows | None = None,
    ) -> Responder: ...


class OfflineFactory(Protocol):
    """Makes the responder of an agent with a workflow or knowledge but no model."""

    def __call__(
        self, *, knowledge: KnowledgeBaseUse | None, workflow: Workflows | None
    ) -> Responder: ...


WorkflowsFactory = Callable[[Workflow, Mapping[str, str]], Workflows]
"""Runs an agent's workflow, given the agent's variables (every call starts with them)."""


@dataclass(frozen=True)
class Profile:
    greeting: str
    backchannels: Backchannels
    unfinished_turn_wait_s: float
    responder: Responder
    voicemail: Voicemail


class Profiles:
    """Each agent's profile, from the agent directory; an agent nobody announced (or none) gets
    the service's own. Profiles are rebuilt when their agent changes."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        agents: AgentDirectory,
        responder: Responder,
        responder_of: ResponderFactory,
        offline_of: OfflineFactory,
        workflows_of: WorkflowsFactory,
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._responder_of = responder_of
        self._offline_of = offline_of
        self._workflows_of = workflows_of
        self.default = Profile(
            greeting=settings.greeting,
            backchannels=self._backchannels(settings.backchannel_words),
            unfinished_turn_wait_s=settings.unfinished_turn_wait_ms / 1000,
            responder=responder,
            voicemail=Voicemail(),  # the service's own agent does not listen for machines
        )
        self._built: dict[str, tuple[AgentSpec, Profile]] = {}

    def of(self, agent_id: str | None) -> Profile:
        agent = None if agent_id is None else self._agents.get(agent_id)
        if agent is None:
            return self.default
        built = self._built.get(agent.agent_id)
        if built is None or built[0] != agent:
            built = (agent, self._profile(agent))
            self._built[agent.agent_id] = built
        return built[1]

    def _profile(self, agent: AgentSpec) -> Profile:
        turn_taking = agent.turn_taking
        wait_ms = turn_taking.unfinished_turn_wait_ms
        prompt = agent.system_prompt or self._settings.system_prompt
        return Profile(
            greeting=agent.greeting or self.default.greeting,
            backchannels=(
                self.default.backchannels
                if turn_taking.backchannel_words is None
                else self._backchannels(turn_taking.backchannel_words)
            ),
            unfinished_turn_wait_s=(
                self.default.unfinished_turn_wait_s if wait_ms is None else wait_ms / 1000
            ),
            responder=self._responder(agent, prompt),
            voicemail=agent.voicemail,
        )

    def _responder(self, agent: AgentSpec, prompt: str) -> Responder:
        """The agent's model, or the service's with the agent's prompt, tools, knowledge and
        workflow; without a model, the offline responder of its workflow and knowledge; else
        the service's own responder."""
        workflow = (
            None if agent.workflow is None else self._workflows_of(agent.workflow, agent.variables)
        )
        model = agent.llm
        if model is None and (
            agent.system_prompt or agent.tools or agent.knowledge_base or agent.workflow
        ):
            model = self._settings.service_model()
        if model is not None:
            return self._responder_of(
                model,
                prompt,
                http_tools=agent.tools,
                knowledge=agent.knowledge_base,
                workflow=workflow,
            )
        if workflow is not None or agent.knowledge_base is not None:
            return self._offline_of(knowledge=agent.knowledge_base, workflow=workflow)
        return self.default.responder

    def _backchannels(self, words: tuple[str, ...]) -> Backchannels:
        return Backchannels.of(
            words,
            max_words=self._settings.backchannel_max_words,
            max_ms=self._settings.backchannel_max_ms,
        )
