"""The LLM responder: any OpenAI-compatible chat-completions endpoint, through the openai SDK.

Tokens are streamed and cut at sentence boundaries; each sentence is yielded (and so spoken) the
moment it ends. When the model calls tools (several at once included), they run concurrently,
their results go back to the model, and its next answer streams the same way. A tool that takes
longer than `filler_after_s` gets a filler sentence spoken meanwhile ("One moment, please.").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from openai import AsyncOpenAI, OpenAIError, omit
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from voicebus_agent.ports import Message, Scene, Script, Toolbox, ToolCall
from voicebus_agent.sentences import SentenceCutter

log = logging.getLogger(__name__)

ContextSource = Callable[[str], Awaitable[str]]
"""Given the caller's last words, text the model should know (retrieved knowledge)."""
KNOWLEDGE_HEADER = "What you know that may help answer (from your knowledge base):"

APOLOGY = "Sorry, I am having trouble answering right now. Could you say that again?"
"""Said when the model cannot be reached or fails mid-answer."""


@dataclass(frozen=True)
class LlmSettings:
    model: str
    temperature: float = 0.7
    filler: str = "One moment, please."
    """Said when tools take longer than `filler_after_s`; empty: say nothing."""
    filler_after_s: float = 1.0
    max_tool_rounds: int = 4
    """Model answers with tool calls in one turn before the turn gives up."""


@dataclass
class _ToolCallDraft:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def done(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.name, arguments="".join(self.arguments))


def chat_messages(system_prompt: str, history: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as chat-completions messages, behind the system prompt."""
    roles = {"user": "user", "agent": "assistant"}
    return [
        {"role": "system", "content": system_prompt},
        *({"role": roles[m.role], "content": m.text} for m in history if m.text),
    ]


class FixedScript:
    """The same instructions and tools all call long."""

    def __init__(self, instructions: str, toolbox: Toolbox) -> None:
        self._instructions = instructions
        self._toolbox = toolbox

    async def scene(self, call_id: str, reply_id: str) -> Scene:
        return self

    def instructions(self) -> str:
        return self._instructions

    def toolbox(self) -> Toolbox:
        return self._toolbox


class LlmResponder:
    """Responder backed by a chat-completions model, told what to do and given tools by its
    `script` before each answer (a workflow's step may change between two answers of a reply)."""

    def __init__(
        self,
        *,
        client: AsyncOpenAI,
        settings: LlmSettings,
        script: Script,
        context: ContextSource | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._script = script
        self._context = context

    async def respond(
        self, history: Sequence[Message], *, call_id: str, reply_id: str
    ) -> AsyncIterator[str]:
        scene = await self._script.scene(call_id, reply_id)
        known = await self._knowledge(history, call_id)
        messages = chat_messages("", history)
        for _ in range(self._settings.max_tool_rounds + 1):
            calls: list[ToolCall] = []
            said: list[str] = []
            messages[0] = {"role": "system", "content": scene.instructions() + known}
            toolbox = scene.toolbox()
            try:
                async for sentence in self._stream(messages, calls, toolbox):
                    said.append(sentence)
                    yield sentence
            except OpenAIError as failed:
                log.warning("call %s: the model failed: %s", call_id, failed)
                yield APOLOGY
                return
            if not calls:
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": " ".join(said) or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in calls
                    ],
                }
            )
            results: list[str] = []
            running = self._run_tools(
                toolbox, calls, call_id=call_id, reply_id=reply_id, into=results
            )
            async for filler in running:
                yield filler
            messages.extend(
                {"role": "tool", "tool_call_id": c.id, "content": result}
                for c, result in zip(calls, results, strict=True)
            )
        log.warning("call %s: the model kept calling tools; turn given up", call_id)
        yield APOLOGY

    async def _knowledge(self, history: Sequence[Message], call_id: str) -> str:
        """What the context source adds to the instructions for the caller's last words."""
        if self._context is None or not history or history[-1].role != "user":
            return ""
        try:
            known = await self._context(history[-1].text)
        except Exception:
            log.warning("call %s: no knowledge context for this turn", call_id, exc_info=True)
            return ""
        return f"\n\n{KNOWLEDGE_HEADER}\n{known}" if known else ""

    async def _stream(
        self, messages: list[dict[str, Any]], calls: list[ToolCall], toolbox: Toolbox
    ) -> AsyncIterator[str]:
        """One model answer: its sentences as they complete; its tool calls into `calls`."""
        tools = toolbox.definitions()
        stream = await self._client.chat.completions.create(
            model=self._settings.model,
            # Plain dicts of the documented shapes.
            messages=cast(list[ChatCompletionMessageParam], messages),
            temperature=self._settings.temperature,
            stream=True,
            tools=cast(list[ChatCompletionFunctionToolParam], tools) if tools else omit,
        )
        cutter = SentenceCutter()
        drafts: dict[int, _ToolCallDraft] = {}
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    for sentence in cutter.feed(delta.content):
                        yield sentence
                for part in delta.tool_calls or ():
                    draft = drafts.setdefault(part.index, _ToolCallDraft())
                    draft.id = part.id or draft.id
                    if part.function is not None:
                        draft.name = part.function.name or draft.name
                        draft.arguments.append(part.function.arguments or "")
        finally:
            await stream.close()  # a reply abandoned midway stops the model's generation
        for sentence in cutter.flush():
            yield sentence
        calls.extend(drafts[index].done() for index in sorted(drafts))

    async def _run_tools(
        self,
        toolbox: Toolbox,
        calls: list[ToolCall],
        *,
        call_id: str,
        reply_id: str,
        into: list[str],
    ) -> AsyncIterator[str]:
        """Run `calls` concurrently, their results into `into` in order; yields the filler if
        they outlast `filler_after_s`."""
        for c in calls:
            # What callers say stays out of the logs: the tool, not its arguments.
            log.info("call %s: tool %s (%d chars of arguments)", call_id, c.name, len(c.arguments))
        running = asyncio.gather(
            *(toolbox.run(c, call_id=call_id, reply_id=reply_id) for c in calls)
        )
        try:
            done, _ = await asyncio.wait({running}, timeout=self._settings.filler_after_s)
            if not done and self._settings.filler:
                yield self._settings.filler
            into.extend(await running)
        finally:
            running.cancel()  # a reply abandoned midway calls no more tools


def tool_error(message: str) -> str:
    """A tool's answer when it could not do what was asked, for the model to read."""
    return json.dumps({"error": message})


def is_tool_error(result: str) -> bool:
    """Whether `result` is a `tool_error`."""
    try:
        answer = json.loads(result)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.keys() == {"error"}
