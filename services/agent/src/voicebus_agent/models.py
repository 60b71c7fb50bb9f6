"""Responders for language models: one openai client per endpoint, the call tools for all."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import httpx
from openai import AsyncOpenAI

from voicebus_agent.http_tools import HttpTools
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.knowledge.tool import KnowledgeSearch
from voicebus_agent.llm import ContextSource, FixedScript, LlmResponder, LlmSettings
from voicebus_agent.ports import ActionLog, Responder, Script, Toolbox
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_agent.settings import AgentSettings
from voicebus_agent.tools import RecordedToolbox, Toolboxes
from voicebus_agent.workflow.progress import Workflows
from voicebus_agent.workflow.script import WorkflowScript
from voicebus_contracts.agents import (
    SECRET_ENV_PREFIX,
    HttpTool,
    KnowledgeBaseUse,
    LanguageModel,
)

log = logging.getLogger(__name__)


class AgentTools(NamedTuple):
    toolbox: Toolbox
    context: ContextSource | None
    """Knowledge retrieved before each answer, when the agent's knowledge base asks for it."""


class ModelResponders:
    """Makes the responder of a model (the service's or an agent's), a system prompt and the
    agent's HTTP tools, beside the call tools every model gets."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        call_tools: Toolbox,
        http: httpx.AsyncClient,
        record: ActionLog,
        knowledge: KnowledgeBases | None = None,
        secrets: Mapping[str, str] = os.environ,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._call_tools = call_tools
        self._http = http
        self._record = record
        self._knowledge = knowledge
        self._clients: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    def __call__(
        self,
        model: LanguageModel,
        system_prompt: str,
        *,
        http_tools: Sequence[HttpTool] = (),
        knowledge: KnowledgeBaseUse | None = None,
        workflow: Workflows | None = None,
    ) -> Responder:
        key = self._key_for(model)
        if model.base_url is None and key is None:
            log.error(
                "model %s is on OpenAI's endpoint without a key (OPENAI_API_KEY for the "
                "service's model, an api_key_secret for an agent's): its agent answers offline",
                model.model,
            )
            return AcknowledgingResponder()
        endpoint = (model.base_url, model.api_key_secret)
        client = self._clients.get(endpoint)
        if client is None:
            # Local OpenAI-compatible servers take any key; OpenAI's own requires one.
            client = self._clients[endpoint] = AsyncOpenAI(
                base_url=model.base_url,
                api_key=key or "unused",
                # A caller is waiting: fail fast to the spoken apology, not after minutes (the
                # SDK's default); the SDK retries with its own backoff.
                timeout=self._settings.llm_timeout_s,
                max_retries=self._settings.llm_retries,
            )
        toolbox, context = self.tools(http_tools=http_tools, knowledge=knowledge)
        script: Script = (
            FixedScript(system_prompt, toolbox)
            if workflow is None
            else WorkflowScript(
                workflow, prompt=system_prompt, toolbox=toolbox, record=self._record
            )
        )
        return LlmResponder(
            client=client,
            settings=LlmSettings(
                model=model.model,
                temperature=model.temperature,
                filler=self._settings.filler,
                filler_after_s=self._settings.filler_after_ms / 1000,
            ),
            script=script,
            context=context,
        )

    def tools(
        self, *, http_tools: Sequence[HttpTool] = (), knowledge: KnowledgeBaseUse | None = None
    ) -> AgentTools:
        """The call tools, the agent's HTTP tools and its knowledge search, each call and
        answer recorded; and the knowledge to put before each of the model's answers."""
        toolboxes: list[Toolbox] = [self._call_tools]
        if http_tools:
            toolboxes.append(HttpTools(http_tools, client=self._http))
        context = None
        if knowledge is not None and self._knowledge is not None:
            search = KnowledgeSearch(self._knowledge, knowledge)
            toolboxes.append(search)
            context = search.context if knowledge.auto_context else None
        return AgentTools(RecordedToolbox(Toolboxes(*toolboxes), self._record), context)

    def _key_for(self, model: LanguageModel) -> str | None:
        """The agent's own secret if it names one; the service's key for the service's
        endpoint only (an agent's endpoint must not receive it)."""
        if model.api_key_secret is not None:
            return self._secrets.get(SECRET_ENV_PREFIX + model.api_key_secret)
        key = self._settings.llm_api_key
        if key is None or model.base_url not in (None, self._settings.llm_base_url):
            return None
        return key.get_secret_value()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
