"""A local Cartesia for tests: its text-to-speech WebSocket, answering every transcript with a tone.

`FakeCartesia` serves `/tts/websocket` on 127.0.0.1 and a free port, and speaks it the way
Cartesia's does (https://docs.cartesia.ai/api-reference/tts/websocket):

- The handshake needs the API key (`Authorization: Bearer`, as the SDK sends it, `X-API-Key`, or
  `?api_key=`) and a Cartesia-Version date (the header, or `?cartesia_version=`, which wins). A
  wrong or missing key is refused with HTTP 401, a missing or malformed version with HTTP 400,
  before the WebSocket opens, in Cartesia's structured error body (error_code, title, message,
  request_id); the wording is the fake's.
- Generation requests on contexts, many contexts at a time on one connection, their chunks
  interleaved. Each transcript is answered with a 440 Hz tone of `ms_per_char` per character
  (blanks at its ends aside) in `chunk_ms` pieces, each a `chunk` message with the audio in
  base64, in the requested raw encoding (pcm_s16le or pcm_f32le) and sample rate. A context's
  inputs are spoken in order and its chunks carry its flush_id; `flush: true` is answered with
  `flush_done` once everything before it is spoken, and starts the next flush_id; `continue:
  false` is answered with `done` after the last chunk, and closes the context.
  `{"context_id": ..., "cancel": true}` stops a context at once, without a word.
- A request it cannot take (a field missing or mistyped, an encoding or rate Cartesia does not
  offer, model, voice or format changed within a context, a closed context) is answered with an
  `error` event for its context.

Every message received is kept in `received`, what each transcript was answered with in
`spoken`. Point the SDK at it:

    client = AsyncCartesia(api_key=fake.api_key, base_url=fake.base_url,
                           websocket_base_url=fake.websocket_url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voicebus_devstack.asgi import LocalFake

PATH = "/tts/websocket"
SAMPLE_RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
ENCODINGS = {"pcm_s16le": "<i2", "pcm_f32le": "<f4"}
"""The raw encodings the fake speaks (Cartesia also offers mu-law and A-law), as numpy types."""
TONE_HZ = 440.0
AMPLITUDE = 0.1
"""Of full scale: about -20 dBFS."""
STATUS_STREAMING = 206
"""The status_code Cartesia puts on chunk, flush_done and done messages."""
SAME_WITHIN_A_CONTEXT = ("model_id", "voice", "output_format")
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Speech:
    """What the fake answered one transcript with, so far."""

    context_id: str
    transcript: str
    flush_id: int
    samples: int = 0
    """Samples sent."""
    chunks: int = 0
    """Chunk messages sent."""
    complete: bool = False
    """Every sample of the transcript's tone was sent (False: cancelled, or still going)."""


@dataclass
class FakeCartesia(LocalFake):
    """Use as `async with FakeCartesia() as fake:`; `base_url` is set once entered."""

    api_key: str = "sk_car_test"
    base_url: str = ""
    ms_per_char: int = 60
    chunk_ms: int = 20
    first_chunk_delay_s: float = 0.0
    """Pause before the first chunk of each transcript, as a model's first audio takes."""
    stall_after_chunks: int | None = None
    """Stop each transcript's audio after this many chunks, as if the model hung, until the
    context is cancelled or the connection closes."""
    received: list[dict[str, Any]] = field(default_factory=list)
    spoken: list[Speech] = field(default_factory=list)
    connections: int = 0
    """Connections accepted so far."""
    _sessions: set[_Session] = field(default_factory=set)

    def _app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute(PATH, self._serve)])

    async def _closing(self) -> None:
        await self.drop_connections()

    @property
    def websocket_url(self) -> str:
        """The base URL WebSocket clients use (the SDK's `websocket_base_url`)."""
        return "ws" + self.base_url.removeprefix("http")

    def samples_for(self, transcript: str, sample_rate: int) -> int:
        """How many samples the fake speaks `transcript` with."""
        return sample_rate * self.ms_per_char * len(transcript.strip()) // 1000

    async def drop_connections(self) -> None:
        """Close every open connection, as Cartesia closes idle ones."""
        for session in list(self._sessions):
            await session.drop()

    async def _serve(self, socket: WebSocket) -> None:
        if (refusal := _refusal(socket, self.api_key)) is not None:
            await socket.send_denial_response(refusal)
            return
        await socket.accept()
        self.connections += 1
        session = _Session(self, socket)
        self._sessions.add(session)
        try:
            async for text in socket.iter_text():
                await session.take(text)
        finally:
            self._sessions.discard(session)
            session.stop()


@dataclass
class _Context:
    request: dict[str, Any]
    """The first request, whose model, voice and format the later ones must keep."""
    inputs: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    """("speak", transcript), ("flush", ""), ("end", "")."""
    flush_id: int = 1
    speaking: asyncio.Task[None] | None = None


class _Session:
    """One connection: its contexts, each spoken in order by its own task."""

    def __init__(self, fake: FakeCartesia, socket: WebSocket) -> None:
        self._fake = fake
        self._socket = socket
        self._contexts: dict[str, _Context] = {}
        self._closed: set[str] = set()

    async def take(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self._error(None, "a message must be a JSON object")
            return
        self._fake.received.append(message)
        context_id = message.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            await self._error(None, "context_id is required")
        elif message.get("cancel") is True:
            self._cancel(context_id)
        elif (problem := self._problem(context_id, message)) is not None:
            await self._error(context_id, problem)
        else:
            self._queue(context_id, message)

    async def drop(self) -> None:
        self.stop()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self._socket.close(code=1001)

    def stop(self) -> None:
        for context_id in list(self._contexts):
            self._cancel(context_id)

    def _problem(self, context_id: str, message: dict[str, Any]) -> str | None:
        """What is wrong with a generation request, if anything."""
        missing = [
            name
            for name in ("model_id", "transcript", "voice", "output_format")
            if name not in message
        ]
        if missing:
            return f"missing fields: {', '.join(missing)}"
        if context_id in self._closed:
            return f"context {context_id} is closed"
        if not isinstance(message["transcript"], str):
            return "transcript must be a string"
        if not all(isinstance(message.get(flag, False), bool) for flag in ("continue", "flush")):
            return "continue and flush must be booleans"
        voice = message["voice"]
        voice_id = voice.get("id") if isinstance(voice, dict) else voice
        if not isinstance(voice_id, str) or not voice_id:
            return "voice must name a voice id"
        output = message["output_format"]
        if not isinstance(output, dict) or output.get("container") != "raw":
            return "output_format must be a raw container"
        if output.get("encoding") not in ENCODINGS:
            return f"encoding must be one of {sorted(ENCODINGS)}"
        if output.get("sample_rate") not in SAMPLE_RATES:
            return f"sample_rate must be one of {SAMPLE_RATES}"
        context = self._contexts.get(context_id)
        if context is not None and any(
            message[name] != context.request[name] for name in SAME_WITHIN_A_CONTEXT
        ):
            return f"{', '.join(SAME_WITHIN_A_CONTEXT)} must stay the same within a context"
        return None

    def _queue(self, context_id: str, message: dict[str, Any]) -> None:
        context = self._contexts.get(context_id)
        if context is None:
            context = self._contexts[context_id] = _Context(request=message)
            context.speaking = asyncio.create_task(
                self._speak(context_id, context), name=f"fake-cartesia-{context_id}"
            )
        if message["transcript"]:
            context.inputs.put_nowait(("speak", message["transcript"]))
        if message.get("flush", False):
            context.inputs.put_nowait(("flush", ""))
        if not message.get("continue", False):
            context.inputs.put_nowait(("end", ""))

    def _cancel(self, context_id: str) -> None:
        context = self._contexts.pop(context_id, None)
        self._closed.add(context_id)
        if context is not None and context.speaking is not None:
            context.speaking.cancel()

    async def _speak(self, context_id: str, context: _Context) -> None:
        """The context's inputs, in order, until it ends, is cancelled or its socket goes."""
        streaming = {"done": False, "status_code": STATUS_STREAMING, "context_id": context_id}
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            while True:
                kind, transcript = await context.inputs.get()
                if kind == "speak":
                    await self._tone(context_id, context, transcript)
                elif kind == "flush":
                    flush = {"flush_done": True, "flush_id": context.flush_id}
                    await self._send({"type": "flush_done", **streaming, **flush})
                    context.flush_id += 1
                else:
                    self._contexts.pop(context_id, None)
                    self._closed.add(context_id)
                    await self._send({"type": "done", **streaming, "done": True})
                    return

    async def _tone(self, context_id: str, context: _Context, transcript: str) -> None:
        fake = self._fake
        output = context.request["output_format"]
        rate: int = output["sample_rate"]
        dtype = ENCODINGS[output["encoding"]]
        speech = Speech(context_id, transcript, context.flush_id)
        fake.spoken.append(speech)
        audio = _tone(fake.samples_for(transcript, rate), rate, dtype)
        step = max(1, rate * fake.chunk_ms // 1000)
        await asyncio.sleep(fake.first_chunk_delay_s)
        for start in range(0, len(audio), step):
            if speech.chunks == fake.stall_after_chunks:
                await asyncio.Event().wait()  # hung, until cancelled
            began = time.perf_counter()
            piece = audio[start : start + step]
            data = base64.b64encode(piece.tobytes()).decode()
            await self._send(
                {
                    "type": "chunk",
                    "data": data,
                    "done": False,
                    "status_code": STATUS_STREAMING,
                    "step_time": (time.perf_counter() - began) * 1000,
                    "context_id": context_id,
                    "flush_id": context.flush_id,
                }
            )
            speech.samples += len(piece)
            speech.chunks += 1
            await asyncio.sleep(0)  # other contexts' chunks go out in between
        speech.complete = True

    async def _error(self, context_id: str | None, message: str) -> None:
        error = {
            "type": "error",
            "done": True,
            "status_code": 400,
            "error_code": None,
            "title": "Invalid request",
            "message": message,
            "request_id": str(uuid.uuid4()),
        }
        await self._send(error if context_id is None else {**error, "context_id": context_id})

    async def _send(self, message: dict[str, Any]) -> None:
        await self._socket.send_text(json.dumps(message))


def _tone(count: int, sample_rate: int, dtype: str) -> npt.NDArray[Any]:
    """`count` samples of the 440 Hz tone, as `dtype` (16-bit integers or 32-bit floats)."""
    wave = AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(count) / sample_rate)
    scale = 32_767 if np.dtype(dtype).kind == "i" else 1.0
    return (wave * scale).astype(dtype)


def _refusal(socket: WebSocket, api_key: str) -> JSONResponse | None:
    """The HTTP answer refusing the handshake, as Cartesia's, or None to accept it."""
    headers, query = socket.headers, socket.query_params
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    key = bearer or headers.get("x-api-key") or query.get("api_key")
    if key != api_key:
        return _http_error(401, "Unauthorized", "Invalid API key")
    version = query.get("cartesia_version") or headers.get("cartesia-version")
    if version is None or not _VERSION.fullmatch(version):
        return _http_error(
            400,
            "Invalid Cartesia-Version",
            "Send a Cartesia-Version header or a cartesia_version query parameter "
            "with a date such as 2026-03-01",
        )
    return None


def _http_error(status: int, title: str, message: str) -> JSONResponse:
    body = {
        "error_code": None,
        "title": title,
        "message": message,
        "request_id": str(uuid.uuid4()),
    }
    return JSONResponse(body, status_code=status)
