"""Responders for language models: one openai client per endpoint, the call tools for all."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
from openai import AsyncOpenAI

from voicebus_agent.http_tools import HttpTools
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.knowledge.tool import KnowledgeSearch
from voicebus_agent.llm import LlmResponder, LlmSettings
from voicebus_agent.ports import Responder, Toolbox
from voicebus_agent.responders import AcknowledgingResponder
from voicebus_agent.settings import AgentSettings
from voicebus_agent.tools import RecordedToolbox, Toolboxes, ToolLog
from voicebus_contracts.agents import HttpTool, KnowledgeBaseUse, LanguageModel

log = logging.getLogger(__name__)


class ModelResponders:
    """Makes the responder of a model (the service's or an agent's), a system prompt and the
    agent's HTTP tools, beside the call tools every model gets."""

    def __init__(
        self,
        settings: AgentSettings,
        call_tools: Toolbox,
        http: httpx.AsyncClient,
        record: ToolLog,
        knowledge: KnowledgeBases | None = None,
    ) -> None:
        self._settings = settings
        self._call_tools = call_tools
        self._http = http
        self._record = record
        self._knowledge = knowledge
        self._clients: dict[str | None, AsyncOpenAI] = {}

    def service_model(self) -> LanguageModel | None:
        """VOICEBUS_AGENT_LLM_*'s model, if one is set."""
        settings = self._settings
        if not settings.llm_model:
            return None
        return LanguageModel(
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            temperature=settings.llm_temperature,
        )

    def __call__(
        self,
        model: LanguageModel,
        system_prompt: str,
        *,
        http_tools: Sequence[HttpTool] = (),
        knowledge: KnowledgeBaseUse | None = None,
    ) -> Responder:
        key = self._settings.llm_api_key
        if model.base_url is None and key is None:
            log.error(
                "model %s is on OpenAI's endpoint, but OPENAI_API_KEY is not set in the agent "
                "service: its agent answers offline",
                model.model,
            )
            return AcknowledgingResponder()
        client = self._clients.get(model.base_url)
        if client is None:
            # Local OpenAI-compatible servers take any key; OpenAI's own requires one.
            api_key = key.get_secret_value() if key else "unused"
            client = self._clients[model.base_url] = AsyncOpenAI(
                base_url=model.base_url, api_key=api_key
            )
        toolboxes: list[Toolbox] = [self._call_tools]
        if http_tools:
            toolboxes.append(HttpTools(http_tools, client=self._http))
        context = None
        if knowledge is not None and self._knowledge is not None:
            search = KnowledgeSearch(self._knowledge, knowledge)
            toolboxes.append(search)
            context = search.context if knowledge.auto_context else None
        return LlmResponder(
            client=client,
            settings=LlmSettings(
                model=model.model,
                system_prompt=system_prompt,
                temperature=model.temperature,
                filler=self._settings.filler,
                filler_after_s=self._settings.filler_after_ms / 1000,
            ),
            toolbox=RecordedToolbox(Toolboxes(*toolboxes), self._record),
            context=context,
        )
