"""A local OpenAI-compatible chat-completions endpoint for tests: streamed answers and tool calls.

`FakeOpenAI` serves `POST /v1/chat/completions` on 127.0.0.1 and a free port, and streams each
answer the way OpenAI does (server-sent events of `chat.completion.chunk`, text in small pieces,
tool calls with their arguments split across chunks, then `data: [DONE]`). Answers are scripted
with `answer(...)`, one per request, in order; without a script it echoes the last user message.
Every request body is kept in `requests`. Point the openai SDK at it:

    client = AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voicebus_devstack.asgi import serve_asgi

PIECE_CHARS = 4
"""Characters per streamed text piece: about a token."""


@dataclass(frozen=True)
class ScriptedAnswer:
    text: str = ""
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()
    """(tool name, arguments) of each tool the answer calls, in order."""
    piece_delay_s: float = 0.0
    """Pause before each streamed piece, as a model's generation would take."""


@dataclass
class FakeOpenAI:
    """Use as `async with FakeOpenAI() as fake:`; `base_url` is set once entered."""

    api_key: str = "sk-test"
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    streamed: int = 0
    """Answers streamed to their end so far."""
    _script: list[ScriptedAnswer] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> FakeOpenAI:
        app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])
        self.base_url = await self._stack.enter_async_context(serve_asgi(app)) + "/v1"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def answer(
        self,
        text: str = "",
        *,
        tool_calls: Sequence[tuple[str, dict[str, Any]]] = (),
        piece_delay_s: float = 0.0,
    ) -> None:
        """Script the next answer: `text`, then calls of `tool_calls`."""
        self._script.append(ScriptedAnswer(text, tool_calls, piece_delay_s))

    async def _complete(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=401)
        body = await request.json()
        self.requests.append(body)
        if not body.get("stream"):
            error = {"message": "this fake only streams", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=400)
        answer = self._script.pop(0) if self._script else _echo(body["messages"])
        return StreamingResponse(
            self._stream(body["model"], answer), media_type="text/event-stream"
        )

    async def _stream(self, model: str, answer: ScriptedAnswer) -> AsyncIterator[str]:
        async for event in _events(model, answer):
            yield event
        self.streamed += 1


def _echo(messages: list[dict[str, Any]]) -> ScriptedAnswer:
    heard = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return ScriptedAnswer(text=f"You said: {heard}")


async def _events(model: str, answer: ScriptedAnswer) -> AsyncIterator[str]:
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for start in range(0, len(answer.text), PIECE_CHARS):
        await asyncio.sleep(answer.piece_delay_s)
        yield chunk({"content": answer.text[start : start + PIECE_CHARS]})
    for index, (name, arguments) in enumerate(answer.tool_calls):
        text = json.dumps(arguments)
        half = len(text) // 2
        opening = {
            "index": index,
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": text[:half]},
        }
        yield chunk({"tool_calls": [opening]})
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": text[half:]}}]})
    yield chunk({}, "tool_calls" if answer.tool_calls else "stop")
    yield "data: [DONE]\n\n"
