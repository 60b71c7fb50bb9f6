"""A local OpenAI-compatible endpoint for tests: chat answers (streamed or whole), tool calls,
and speech.

`FakeOpenAI` serves `POST /v1/chat/completions` on 127.0.0.1 and a free port, and streams each
answer the way OpenAI does (server-sent events of `chat.completion.chunk`, text in small pieces,
tool calls with their arguments split across chunks, then `data: [DONE]`); a request that does
not ask for a stream gets the whole answer as one `chat.completion` (whatever its
`response_format` asks, the scripted text is the answer's content). Answers are scripted with
`answer(...)`, one per request, in order; without a script it echoes the last user message.
Every request body is kept in `requests`; with a `gate`, every answer waits until it is set.

It also serves `POST /v1/audio/speech` with `response_format="pcm"`: raw 16-bit little-endian
mono PCM at 24 kHz, as OpenAI streams it, here a tone as long as the text would take to say,
sent in pieces as `voice` (a `FakeVoice`) says. Each speech request is kept in `speeches`, with
how much of its audio was sent and whether the client went away first.
Point the openai SDK at it:

    client = AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voicebus_devstack.asgi import LocalFake

PIECE_CHARS = 4
"""Characters per streamed text piece: about a token."""
SPEECH_SAMPLE_RATE = 24_000
"""OpenAI's `pcm` speech: 24 kHz, 16-bit signed little-endian, mono."""
TONE_HZ = 440.0
TONE_AMPLITUDE = 2_000


@dataclass(frozen=True)
class ScriptedAnswer:
    text: str = ""
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()
    """(tool name, arguments) of each tool the answer calls, in order."""
    piece_delay_s: float = 0.0
    """Pause before each streamed piece, as a model's generation would take."""


@dataclass(frozen=True)
class FakeVoice:
    """How a fake speech endpoint speaks: a quiet 440 Hz tone of `ms_per_char` per character
    of text (leading and trailing blanks aside), sent in pieces of `piece_bytes`."""

    ms_per_char: int = 60
    piece_bytes: int = 4_800
    """100 ms of 24 kHz PCM16; an odd count splits samples across pieces, as networks do."""
    first_delay_s: float = 0.0
    """Pause before the first piece, as the provider's time to first byte."""
    piece_delay_s: float = 0.0
    """Pause before each later piece, as synthesis running behind the download would take."""

    def tone(self, text: str, sample_rate: int) -> bytes:
        """The speech of `text`: PCM16 little-endian at `sample_rate`."""
        count = sample_rate * len(text.strip()) * self.ms_per_char // 1000
        wave = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(count) / sample_rate)
        return wave.astype("<i2").tobytes()


@dataclass
class SpeechStream:
    """One speech request a fake answered, and how far its audio got."""

    body: dict[str, Any]
    query: dict[str, str]
    audio_bytes: int = 0
    """The whole speech's size, sent or not."""
    sent_bytes: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the fake stops sending: the speech is all sent, or the client went away first."""

    async def send(self, audio: bytes, voice: FakeVoice) -> AsyncIterator[bytes]:
        """Stream `audio` in `voice`'s pieces and pauses, counting what went out."""
        self.audio_bytes = len(audio)
        try:
            await asyncio.sleep(voice.first_delay_s)
            for start in range(0, len(audio), voice.piece_bytes):
                if start:
                    await asyncio.sleep(voice.piece_delay_s)
                piece = audio[start : start + voice.piece_bytes]
                yield piece
                self.sent_bytes += len(piece)
        finally:  # also when the server cancels the stream because the client hung up
            self.ended.set()


@dataclass
class FakeOpenAI(LocalFake):
    """Use as `async with FakeOpenAI() as fake:`; `base_url` is set once entered."""

    api_key: str = "sk-test"
    base_url: str = ""
    voice: FakeVoice = field(default_factory=FakeVoice)
    requests: list[dict[str, Any]] = field(default_factory=list)
    streamed: int = 0
    """Answers streamed to their end so far."""
    speeches: list[SpeechStream] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When given, each chat answer waits for it to be set: a model that answers only when the
    test says (set it from the loop that serves the fake)."""
    _script: list[ScriptedAnswer] = field(default_factory=list)

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                Route("/v1/audio/speech", self._speak, methods=["POST"]),
            ]
        )

    def _url(self, served: str) -> str:
        return served + "/v1"

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
            return _refusal("Incorrect API key provided", status_code=401)
        body = await request.json()
        self.requests.append(body)
        answer = self._script.pop(0) if self._script else _echo(body["messages"])
        if self.gate is not None:
            await self.gate.wait()
        if not body.get("stream"):
            return JSONResponse(_completion(body["model"], answer))
        return StreamingResponse(
            self._stream(body["model"], answer), media_type="text/event-stream"
        )

    async def _stream(self, model: str, answer: ScriptedAnswer) -> AsyncIterator[str]:
        async for event in _events(model, answer):
            yield event
        self.streamed += 1

    async def _speak(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _refusal("Incorrect API key provided", status_code=401)
        body = await request.json()
        speech = SpeechStream(body=body, query=dict(request.query_params))
        self.speeches.append(speech)
        if body.get("response_format") != "pcm":
            return _refusal("this fake only speaks pcm", status_code=400)
        audio = self.voice.tone(body["input"], SPEECH_SAMPLE_RATE)
        return StreamingResponse(speech.send(audio, self.voice), media_type="audio/pcm")


def _refusal(message: str, *, status_code: int) -> JSONResponse:
    error = {"message": message, "type": "invalid_request_error"}
    return JSONResponse({"error": error}, status_code=status_code)


def _echo(messages: list[dict[str, Any]]) -> ScriptedAnswer:
    heard = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return ScriptedAnswer(text=f"You said: {heard}")


def _completion(model: str, answer: ScriptedAnswer) -> dict[str, Any]:
    """`answer` whole, as a `chat.completion`."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for name, arguments in answer.tool_calls
        ]
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if answer.tool_calls else "stop",
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }


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
