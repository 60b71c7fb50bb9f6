"""The knowledge base as the model sees it: a search tool, and context for each caller turn."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebus_agent.knowledge.store import KnowledgeBases, context_of
from voicebus_agent.llm import tool_error
from voicebus_agent.ports import ToolCall
from voicebus_contracts.agents import KnowledgeBaseUse

log = logging.getLogger(__name__)

SEARCH = "search_knowledge_base"


class _SearchArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=500)


class KnowledgeSearch:
    """Toolbox of one tool, `search_knowledge_base`, over the agent's knowledge base."""

    def __init__(self, knowledge: KnowledgeBases, use: KnowledgeBaseUse) -> None:
        self._knowledge = knowledge
        self._use = use

    def definitions(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": SEARCH,
                    "description": (
                        "Search what you know about the business (hours, prices, policies...) "
                        "before answering a question about it."
                    ),
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string", "description": "the caller's question"}
                        },
                        "required": ["query"],
                        "additionalProperties": False,
                    },
                },
            }
        ]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        try:
            query = _SearchArguments.model_validate_json(call.arguments or "{}").query
        except ValidationError as refused:
            return tool_error(f"{SEARCH} refused: {refused}")
        try:
            passages = await self._knowledge.search(self._use.id, query, limit=self._use.top_k)
        except Exception as failed:
            log.warning(
                "call %s: knowledge base %s not searched", call_id, self._use.id, exc_info=True
            )
            return tool_error(f"{SEARCH} failed: {failed}")
        log.info("call %s: %d passages found in %s", call_id, len(passages), self._use.id)
        return json.dumps({"passages": [p.text for p in passages]})

    async def context(self, caller_words: str) -> str:
        """What the knowledge base holds nearest to what the caller just said."""
        return context_of(
            await self._knowledge.search(self._use.id, caller_words, limit=self._use.top_k)
        )
