"""A local OpenAI Realtime API for tests (the GA protocol, over a WebSocket): each session's
configuration and caller audio kept, and a server VAD and a model that the test scripts.

`FakeOpenAIRealtime` serves `/v1/realtime?model=...` on 127.0.0.1 and a free port, and speaks it
the way OpenAI does (https://platform.openai.com/docs/guides/realtime-conversations; the events:
https://platform.openai.com/docs/api-reference/realtime-client-events and
https://platform.openai.com/docs/api-reference/realtime-server-events):

- The key goes in `Authorization: Bearer`. Like the API, the fake does not refuse a wrong key at
  the handshake: the socket opens, an `error` event (code `invalid_api_key`) comes, then a close
  with code 3000 and reason `invalid_request_error.invalid_api_key` (the SDK then raises
  `websockets.exceptions.ConnectionClosedError` out of `async for event in connection`).
- Each connection is a session (`sessions`, in order), opened with `session.created`.
  `session.update` merges what it sends into the session's configuration (`config`; within
  `audio.input` and `audio.output` field by field) and is answered with `session.updated`. What
  GA refuses is refused with an `error` event, the configuration left as it was: a missing
  `session.type`, a field GA does not know (a beta one such as `input_audio_format`, say), an
  audio format the fake does not speak (it speaks `audio/pcm`, 24 kHz 16-bit PCM, and
  `audio/pcmu`, 8 kHz G.711 mu-law; not OpenAI's `audio/pcma`).
- `input_audio_buffer.append` audio is decoded from base64 and kept (`audio_received`). By
  default the fake does not listen to it: the test says when the server VAD hears the caller,
  and what it heard (`caller_speaks`, or `caller_starts_speaking` then `caller_stops_speaking`).
  With `listens`, the server VAD hears the audio itself, so that a simulated caller streaming
  its microphone (silence, speech, silence) is answered with no test code in the loop: an
  energy VAD over 20 ms frames of the audio, decoded per the session's input format and timed
  by the audio's own clock (not the wall's), hears speech start with the first frame whose RMS
  is above `speech_rms`, and the turn end once turn detection's `silence_duration_ms` of frames
  below it follow (200 in a new session, as `session.created` shows it; 500 when a
  `turn_detection` sent leaves it out, as in the API); the caller said `heard_text`. It then
  does what `caller_starts_speaking` and `caller_stops_speaking` do, from the start of the
  speech's first loud frame to the end of its last. Either way, the fake then sends what the
  API sends: `input_audio_buffer.speech_started`, `.speech_stopped`, `.committed`, the
  caller's item added and done, its transcription when `audio.input.transcription` is set,
  and a response unless turn detection's `create_response` is false. Speech starting while a
  response streams cancels it (reason `turn_detected`) unless `interrupt_response` is false: a
  barge-in, after which a client truncates what it played.
- `conversation.item.create` (messages, function calls, function call outputs, as GA types them)
  adds to the conversation (`items`), answered with `conversation.item.added` and `.done`;
  `conversation.item.truncate` is checked against the audio sent, kept (`truncations`) and
  answered with `conversation.item.truncated`; `response.create` starts the next response,
  `response.cancel` stops the one streaming (`response.done` with status `cancelled`).
- Responses are scripted on the fake, one per response, in order across sessions: `answer(text)`
  says `text` (a 440 Hz tone of `ms_per_char` per character, in the session's output format, in
  `chunk_ms` pieces each with its share of the transcript, `chunk_delay_s` before each);
  `call_tool(name, arguments)` calls a function. Unscripted, it says "You said: " and the
  caller's last words.
- Any other client event is answered with an `error` event.

Each session keeps every client event (`received`) and server event (`sent`). `await
fake.session(index)` waits for a connection, from any event loop; a session's scripting coroutines
(`caller_speaks` and the like) run on the loop serving the fake (from a test whose loop is another,
through `LoopThread.run`). Point the SDK at it (the SDK makes the WebSocket URL from `base_url`,
`http` becoming `ws`):

    client = AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url)
    async with client.realtime.connect(model="gpt-realtime") as connection: ...
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from voicebus_audio.g711 import mulaw_to_pcm16, pcm16_to_mulaw
from voicebus_devstack.asgi import LocalFake
from voicebus_devstack.fake_openai import PIECE_CHARS, TONE_AMPLITUDE, TONE_HZ
from voicebus_devstack.polling import until

PATH = "/v1/realtime"
INVALID_KEY_CLOSE = 3000
"""The close code OpenAI ends a connection with after refusing its key."""
CLIENT_EVENTS = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)
"""Every client event GA defines, answered by the fake or not."""
SESSION_FIELDS = frozenset(
    {
        "type",
        "audio",
        "include",
        "instructions",
        "max_output_tokens",
        "model",
        "output_modalities",
        "parallel_tool_calls",
        "prompt",
        "reasoning",
        "tool_choice",
        "tools",
        "tracing",
        "truncation",
    }
)
AUDIO_FIELDS = {
    "input": frozenset({"format", "noise_reduction", "transcription", "turn_detection"}),
    "output": frozenset({"format", "speed", "voice"}),
}
TURN_DETECTIONS = frozenset({"server_vad", "semantic_vad"})
SILENCE_DURATION_MS = 500
"""How long the caller is quiet before the server VAD ends a turn, unless the session says."""
VAD_FRAME_MS = 20
"""The audio the fake's VAD judges at a time, speech or not, when it listens."""
CONTENT_TYPES = {
    "user": frozenset({"input_text", "input_audio", "input_image"}),
    "system": frozenset({"input_text"}),
    "assistant": frozenset({"output_text"}),
}
"""What content a client-created message of each role may hold (GA cannot take assistant
audio from a client)."""


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    bytes_per_sample: int
    encode: Callable[[npt.NDArray[np.int16]], bytes]
    decode: Callable[[bytes], npt.NDArray[np.int16]]

    def ms(self, byte_count: int) -> int:
        return byte_count * 1000 // (self.sample_rate * self.bytes_per_sample)

    def byte_count(self, ms: int) -> int:
        return self.sample_rate * self.bytes_per_sample * ms // 1000


AUDIO_FORMATS = {
    "audio/pcm": AudioFormat(
        24_000,
        2,
        lambda samples: samples.astype("<i2").tobytes(),
        lambda audio: np.frombuffer(audio, dtype="<i2").astype(np.int16),
    ),
    "audio/pcmu": AudioFormat(8_000, 1, pcm16_to_mulaw, mulaw_to_pcm16),
}
"""The formats the fake speaks, by their `type`; `audio/pcm` is 24 kHz only, as OpenAI's."""


@dataclass(frozen=True)
class SpokenAnswer:
    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """What the server VAD heard the caller say, and where in the audio received."""

    item_id: str
    transcript: str
    audio_start_ms: int
    audio_end_ms: int


@dataclass(frozen=True)
class Truncation:
    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass
class Response:
    """One response of a session, and how far it got."""

    id: str
    script: SpokenAnswer | ToolCall
    item_id: str
    """The id of the response's one output item: the assistant's message, or the call."""
    request: dict[str, Any] | None
    """The `response` of the `response.create` that asked for it (None: none given, or turn
    detection asked)."""
    status: str = "in_progress"
    """Then `completed` or `cancelled`."""
    reason: str | None = None
    """Why it was cancelled: `client_cancelled` or `turn_detected`."""
    audio_ms: int = 0
    """Audio sent so far."""
    transcript: str = ""
    """Transcript sent so far."""


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class FakeOpenAIRealtime(LocalFake):
    """Use as `async with FakeOpenAIRealtime() as fake:`; `base_url` is set once entered."""

    api_key: str = "sk-test"
    base_url: str = ""
    ms_per_char: int = 60
    """Speech per character of an answer's text (blanks at its ends aside)."""
    chunk_ms: int = 100
    """Audio per `response.output_audio.delta`."""
    chunk_delay_s: float = 0.0
    """Pause before each audio delta, as generation takes; long enough to barge in on."""
    listens: bool = False
    """Whether each session's server VAD hears the caller's audio itself (see the module's
    docstring) rather than the test saying when the caller speaks."""
    speech_rms: float = 200.0
    """The RMS of 16-bit samples above which a frame is speech, when the fake listens: eSpeak's
    speech is in the thousands in its vowels and some hundreds in its consonants, mu-law
    silence (0xFF) and digital zero are 0."""
    heard_text: str = "(speech)"
    """What the caller said, for each turn the VAD hears in the audio when the fake listens; a
    test sets it before the turn ends."""
    sessions: list[RealtimeSession] = field(default_factory=list)
    refused: int = 0
    """Connections refused for their key."""
    _script: list[SpokenAnswer | ToolCall] = field(default_factory=list)

    def _app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute(PATH, self._serve)])

    def _url(self, served: str) -> str:
        return served + "/v1"

    async def _closing(self) -> None:
        for session in self.sessions:
            await session.close()

    def answer(self, text: str) -> None:
        """Script the next response: `text`, spoken."""
        self._script.append(SpokenAnswer(text))

    def call_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """Script the next response: a call of the function `name` with `arguments`."""
        self._script.append(ToolCall(name, arguments))

    async def session(self, index: int = 0, *, timeout_s: float = 5.0) -> RealtimeSession:
        """The `index`th session (0: the first), once its connection is open."""
        await until(
            lambda: len(self.sessions) > index, what=f"session {index}", timeout_s=timeout_s
        )
        return self.sessions[index]

    def _next_script(self, session: RealtimeSession) -> SpokenAnswer | ToolCall:
        if self._script:
            return self._script.pop(0)
        return SpokenAnswer(f"You said: {session.last_words()}")

    async def _serve(self, socket: WebSocket) -> None:
        await socket.accept()
        if socket.headers.get("authorization") != f"Bearer {self.api_key}":
            self.refused += 1
            await _refuse_key(socket)
            return
        session = RealtimeSession(self, socket, socket.query_params.get("model"))
        await session._open()
        self.sessions.append(session)
        try:
            async for text in socket.iter_text():
                await session._take(text)
        finally:
            session._end()


@dataclass
class _Streaming:
    """The response a session is streaming, and how to stop it."""

    response: Response
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def stop(self, reason: str) -> None:
        """Cancel the response for `reason`; returns once its `response.done` is sent."""
        if self.response.status == "in_progress":
            self.response.reason = reason
        self.stopping.set()
        if self.task is not None:
            await self.task

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if stopped first; whether the response is to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()


class RealtimeSession:
    """One connection's session: what the client sent it, and what the test makes it hear.

    The records a test asserts on: `config` (the effective configuration), `updates` (each
    accepted `session.update`'s `session`), `audio_received` (the caller's audio, decoded),
    `items` (the conversation, in order, as the server holds it), `turns` (what the VAD heard),
    `responses`, `truncations`, `cancels` (each `response.cancel` event), `received` (every
    client event) and `sent` (every server event); `ended` once the connection is closed."""

    def __init__(self, fake: FakeOpenAIRealtime, socket: WebSocket, model: str | None) -> None:
        self._fake = fake
        self._socket = socket
        self.model = model
        self.conversation_id = _id("conv")
        self.config: dict[str, Any] = _default_config(model)
        self.updates: list[dict[str, Any]] = []
        self.audio_received = bytearray()
        self.items: list[dict[str, Any]] = []
        self.turns: list[Turn] = []
        self.responses: list[Response] = []
        self.truncations: list[Truncation] = []
        self.cancels: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.ended = False
        self._speech: tuple[str, int] | None = None
        """The item id and start of the caller's speech the VAD is hearing."""
        self._listened = 0
        """How much of `audio_received` the listening VAD has judged, in bytes (whole frames)."""
        self._loud_until: int | None = None
        """Where the last loud frame of the speech the listening VAD hears ends (ms of audio
        received); None while it hears none."""
        self._streaming: _Streaming | None = None

    # What the test makes the server VAD hear.

    async def caller_speaks(
        self,
        transcript: str,
        *,
        audio_start_ms: int | None = None,
        audio_end_ms: int | None = None,
    ) -> str:
        """The server VAD hears the caller say `transcript`, from `audio_start_ms` to
        `audio_end_ms` of the audio received (by default: both where the audio received ends);
        returns the id of the caller's item. A response follows, in the background."""
        await self.caller_starts_speaking(audio_start_ms=audio_start_ms)
        return await self.caller_stops_speaking(transcript, audio_end_ms=audio_end_ms)

    async def caller_starts_speaking(self, *, audio_start_ms: int | None = None) -> str:
        """The server VAD hears the caller start speaking: `input_audio_buffer.speech_started`,
        and, when a response is streaming and turn detection interrupts (as by default), that
        response cancelled (`turn_detected`); returns once all is sent, with the id the caller's
        item will have."""
        detection = self._turn_detection()
        item_id = _id("item")
        start = self._audio_ms() if audio_start_ms is None else audio_start_ms
        self._speech = (item_id, start)
        await self._send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start,
                "item_id": item_id,
            }
        )
        if self._streaming is not None and detection.get("interrupt_response", True):
            await self._streaming.stop("turn_detected")
        return item_id

    async def caller_stops_speaking(
        self, transcript: str, *, audio_end_ms: int | None = None
    ) -> str:
        """The server VAD hears the caller stop, having said `transcript`: speech stopped, the
        buffer committed, the caller's item added and done, its transcription (when the session
        asks for one), and, unless turn detection's `create_response` is false or a response is
        still streaming, a response, streamed in the background. Returns the item's id."""
        detection = self._turn_detection()
        if self._speech is None:
            raise RuntimeError("the caller has not started speaking")
        (item_id, start), self._speech = self._speech, None
        end = max(start, self._audio_ms()) if audio_end_ms is None else audio_end_ms
        self.turns.append(Turn(item_id, transcript, start, end))
        await self._send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end, "item_id": item_id}
        )
        previous = self._last_item_id()
        await self._send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._add_item(item)
        if self.config["audio"]["input"].get("transcription") is not None:
            item["content"][0]["transcript"] = transcript
            await self._send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                    "usage": {"type": "duration", "seconds": (end - start) / 1000},
                }
            )
        if detection.get("create_response", True) and self._streaming is None:
            self._respond(request=None)
        return item_id

    def last_words(self) -> str:
        """What the caller last said or wrote: the latest user item's words."""
        heard = {turn.item_id: turn.transcript for turn in self.turns}
        for item in reversed(self.items):
            if item.get("type") == "message" and item.get("role") == "user":
                return " ".join(
                    part.get("text") or heard.get(item["id"], "") for part in item["content"]
                )
        return ""

    # The connection.

    async def _open(self) -> None:
        await self._send({"type": "session.created", "session": self.config})

    async def close(self) -> None:
        """Close the connection, as the server going away does."""
        if not self.ended:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._socket.close(code=1001)

    def _end(self) -> None:
        """The connection is gone: stop streaming."""
        self.ended = True
        if self._streaming is not None and self._streaming.task is not None:
            self._streaming.task.cancel()

    async def _take(self, text: str) -> None:
        """Answer one client event."""
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            await self._error("The message is not a JSON object.", code="invalid_json")
            return
        self.received.append(event)
        kind = event.get("type")
        handler = self._handlers().get(kind) if isinstance(kind, str) else None
        if handler is not None:
            await handler(event)
        elif kind in CLIENT_EVENTS:
            await self._error(
                f"The fake does not handle '{kind}'.", param="type", event_id=event.get("event_id")
            )
        else:
            await self._error(
                f"Invalid value: '{kind}'. Supported values are: {sorted(CLIENT_EVENTS)}.",
                code="invalid_value",
                param="type",
                event_id=event.get("event_id"),
            )

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Awaitable[None]]]:
        return {
            "session.update": self._update,
            "input_audio_buffer.append": self._append,
            "conversation.item.create": self._create_item,
            "conversation.item.truncate": self._truncate,
            "response.create": self._create_response,
            "response.cancel": self._cancel_response,
        }

    # Client events.

    async def _update(self, event: dict[str, Any]) -> None:
        problem = _session_problem(event.get("session"))
        if problem is not None:
            await self._refuse(event, *problem)
            return
        update: dict[str, Any] = event["session"]
        self.updates.append(update)
        self.config = _merged(self.config, update)
        await self._send({"type": "session.updated", "session": self.config})

    async def _append(self, event: dict[str, Any]) -> None:
        try:
            audio = base64.b64decode(event.get("audio", ""), validate=True)
        except (binascii.Error, TypeError):
            await self._refuse(
                event, "invalid_value", "audio", "Invalid 'audio'. Expected base64-encoded bytes."
            )
            return
        self.audio_received += audio
        await self._listen()

    async def _listen(self) -> None:
        """When the fake listens, judge each whole frame of caller audio not yet judged: the
        caller starts speaking with a loud frame, and stops once turn detection's silence
        follows the last one. Audio that comes while the fake does not listen, or turn detection
        is off, is passed over, not judged later."""
        detection = self.config["audio"]["input"].get("turn_detection")
        if not self._fake.listens or detection is None:
            self._listened = len(self.audio_received)
            return
        audio_format = AUDIO_FORMATS[self.config["audio"]["input"]["format"]["type"]]
        frame = audio_format.byte_count(VAD_FRAME_MS)
        silence_ms = detection.get("silence_duration_ms", SILENCE_DURATION_MS)
        while len(self.audio_received) - self._listened >= frame:
            start, end = self._listened, self._listened + frame
            self._listened = end
            samples = audio_format.decode(bytes(self.audio_received[start:end]))
            end_ms = audio_format.ms(end)
            if _rms(samples) > self._fake.speech_rms:
                if self._loud_until is None:
                    await self.caller_starts_speaking(audio_start_ms=audio_format.ms(start))
                self._loud_until = end_ms
            elif self._loud_until is not None and end_ms - self._loud_until >= silence_ms:
                speech_end, self._loud_until = self._loud_until, None
                await self.caller_stops_speaking(self._fake.heard_text, audio_end_ms=speech_end)

    async def _create_item(self, event: dict[str, Any]) -> None:
        problem = self._item_problem(event.get("item"))
        if problem is not None:
            await self._refuse(event, "invalid_value", *problem)
            return
        item = {
            "id": _id("item"),
            **event["item"],
            "object": "realtime.item",
            "status": "completed",
        }
        await self._add_item(item)

    async def _truncate(self, event: dict[str, Any]) -> None:
        problem = self._truncation_problem(event)
        if problem is not None:
            await self._refuse(event, "invalid_value", *problem)
            return
        truncation = Truncation(event["item_id"], 0, event["audio_end_ms"])
        self.truncations.append(truncation)
        await self._send({"type": "conversation.item.truncated", **dataclasses.asdict(truncation)})

    async def _create_response(self, event: dict[str, Any]) -> None:
        if self._streaming is not None:
            await self._error(
                "Conversation already has an active response in progress: "
                f"{self._streaming.response.id}. Wait until the response is finished before "
                "creating a new one.",
                code="conversation_already_has_active_response",
                event_id=event.get("event_id"),
            )
            return
        self._respond(request=event.get("response"))

    async def _cancel_response(self, event: dict[str, Any]) -> None:
        self.cancels.append(event)
        wanted = event.get("response_id")
        streaming = self._streaming
        if streaming is None or wanted not in (None, streaming.response.id):
            await self._error(
                "Cancellation failed: no active response found.",
                code="response_cancel_not_active",
                event_id=event.get("event_id"),
            )
            return
        await streaming.stop("client_cancelled")

    # Responses.

    def _respond(self, request: dict[str, Any] | None) -> None:
        """Start the next scripted response, streamed by a task of its own."""
        response = Response(
            id=_id("resp"),
            script=self._fake._next_script(self),
            item_id=_id("item"),
            request=request,
        )
        self.responses.append(response)
        streaming = _Streaming(response)
        streaming.task = asyncio.create_task(
            self._stream(streaming), name=f"fake-openai-realtime-{response.id}"
        )
        self._streaming = streaming

    async def _stream(self, streaming: _Streaming) -> None:
        response = streaming.response
        try:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._send({"type": "response.created", "response": self._body(response)})
                if isinstance(response.script, ToolCall):
                    item = await self._call(streaming, response.script)
                else:
                    item = await self._speak(streaming, response.script)
                response.status = "cancelled" if streaming.stopping.is_set() else "completed"
                await self._send(
                    {"type": "response.done", "response": self._body(response, [item])}
                )
        finally:
            self._streaming = None

    async def _speak(self, streaming: _Streaming, answer: SpokenAnswer) -> dict[str, Any]:
        """Stream `answer`'s audio and transcript; returns the assistant's item as it ended."""
        fake, response = self._fake, streaming.response
        audio_format = AUDIO_FORMATS[self.config["audio"]["output"]["format"]["type"]]
        rate = audio_format.sample_rate
        samples = _tone(rate * len(answer.text.strip()) * fake.ms_per_char // 1000, rate)
        where = {"response_id": response.id, "item_id": response.item_id, "output_index": 0}
        item: dict[str, Any] = {
            "id": response.item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await self._start_item(response, item)
        part = {"type": "audio", "transcript": ""}
        await self._send(
            {"type": "response.content_part.added", **where, "content_index": 0, "part": part}
        )
        step = rate * fake.chunk_ms // 1000
        for start in range(0, len(samples), step):
            if await streaming.pause(fake.chunk_delay_s):
                break
            end = min(start + step, len(samples))
            said = answer.text[: len(answer.text) * end // len(samples)]
            if said != response.transcript:
                await self._send(
                    {
                        "type": "response.output_audio_transcript.delta",
                        **where,
                        "content_index": 0,
                        "delta": said[len(response.transcript) :],
                    }
                )
                response.transcript = said
            audio = audio_format.encode(samples[start:end])
            await self._send(
                {
                    "type": "response.output_audio.delta",
                    **where,
                    "content_index": 0,
                    "delta": base64.b64encode(audio).decode(),
                }
            )
            response.audio_ms = end * 1000 // rate
        if not streaming.stopping.is_set():
            response.transcript = answer.text
        part = {"type": "audio", "transcript": response.transcript}
        await self._send({"type": "response.output_audio.done", **where, "content_index": 0})
        await self._send(
            {
                "type": "response.output_audio_transcript.done",
                **where,
                "content_index": 0,
                "transcript": response.transcript,
            }
        )
        await self._send(
            {"type": "response.content_part.done", **where, "content_index": 0, "part": part}
        )
        item["content"] = [{"type": "output_audio", "transcript": response.transcript}]
        await self._end_item(streaming, item)
        return item

    async def _call(self, streaming: _Streaming, call: ToolCall) -> dict[str, Any]:
        """Stream a call of `call`'s function; returns its item as it ended."""
        response = streaming.response
        call_id = _id("call")
        arguments = json.dumps(call.arguments)
        where = {"response_id": response.id, "item_id": response.item_id, "output_index": 0}
        item: dict[str, Any] = {
            "id": response.item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": call_id,
            "arguments": "",
        }
        await self._start_item(response, item)
        for start in range(0, len(arguments), PIECE_CHARS):
            if await streaming.pause(0):
                break
            piece = arguments[start : start + PIECE_CHARS]
            await self._send(
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "call_id": call_id,
                    "delta": piece,
                }
            )
            item["arguments"] += piece
        await self._send(
            {
                "type": "response.function_call_arguments.done",
                **where,
                "call_id": call_id,
                "name": call.name,
                "arguments": item["arguments"],
            }
        )
        await self._end_item(streaming, item)
        return item

    async def _start_item(self, response: Response, item: dict[str, Any]) -> None:
        previous = self._last_item_id()
        self.items.append(item)
        await self._send(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": 0,
                "item": item,
            }
        )
        await self._send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )

    async def _end_item(self, streaming: _Streaming, item: dict[str, Any]) -> None:
        item["status"] = "incomplete" if streaming.stopping.is_set() else "completed"
        response_id = streaming.response.id
        await self._send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        await self._send(
            {
                "type": "conversation.item.done",
                "previous_item_id": self._previous_id(item),
                "item": item,
            }
        )

    def _body(
        self, response: Response, output: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """`response` as the API's `realtime.response`."""
        details: dict[str, Any] | None = None
        if response.status == "cancelled":
            details = {"type": "cancelled", "reason": response.reason}
        audio_output = self.config["audio"]["output"]
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": response.status,
            "status_details": details,
            "output": output or [],
            "conversation_id": self.conversation_id,
            "output_modalities": ["audio"],
            "audio": {"output": {"format": audio_output["format"], "voice": audio_output["voice"]}},
            "max_output_tokens": "inf",
            "metadata": None,
            "usage": None,
        }

    # Checks.

    def _item_problem(self, item: object) -> tuple[str, str] | None:
        """What GA refuses in a client-created item, as (param, message), if anything."""
        if not isinstance(item, dict):
            return "item", "Missing required parameter: 'item'."
        kind = item.get("type")
        if kind == "message":
            allowed = CONTENT_TYPES.get(str(item.get("role")), frozenset())
            if not allowed:
                return "item.role", f"Invalid value: '{item.get('role')}'."
            content = item.get("content")
            if not isinstance(content, list) or not content:
                return "item.content", "Missing required parameter: 'item.content'."
            for index, part in enumerate(content):
                part_type = part.get("type") if isinstance(part, dict) else None
                if part_type not in allowed:
                    return (
                        f"item.content[{index}].type",
                        f"Invalid value: '{part_type}'. Supported values are: {sorted(allowed)}.",
                    )
            return None
        if kind == "function_call":
            if not all(
                isinstance(item.get(name), str) for name in ("name", "arguments", "call_id")
            ):
                return "item", "A function_call needs name, arguments and call_id strings."
            return None
        if kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not isinstance(item.get("output"), str):
                return "item", "A function_call_output needs call_id and output strings."
            if not any(
                known.get("type") == "function_call" and known.get("call_id") == call_id
                for known in self.items
            ):
                return "item.call_id", f"Tool call ID '{call_id}' not found in conversation."
            return None
        return "item.type", f"Invalid value: '{kind}'."

    def _truncation_problem(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """What the API refuses in a truncation, as (param, message), if anything: an item that
        is not the assistant's audio, audio beyond what was sent."""
        spoken = {
            response.item_id: response
            for response in self.responses
            if isinstance(response.script, SpokenAnswer)
        }.get(str(event.get("item_id")))
        end_ms = event.get("audio_end_ms")
        if spoken is None:
            return "item_id", f"No assistant audio item with id '{event.get('item_id')}'."
        if event.get("content_index") != 0:
            return "content_index", "Only content_index 0 can be truncated."
        if not isinstance(end_ms, int) or not 0 <= end_ms <= spoken.audio_ms:
            return (
                "audio_end_ms",
                f"audio_end_ms {end_ms} is not within the item's {spoken.audio_ms} ms of audio.",
            )
        return None

    def _turn_detection(self) -> dict[str, Any]:
        detection: dict[str, Any] | None = self.config["audio"]["input"].get("turn_detection")
        if detection is None:
            raise RuntimeError("turn detection is off in this session: no VAD hears the caller")
        return detection

    # Sending.

    def _audio_ms(self) -> int:
        """How much caller audio has been received, in the session's input format."""
        input_format = AUDIO_FORMATS[self.config["audio"]["input"]["format"]["type"]]
        return input_format.ms(len(self.audio_received))

    def _last_item_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def _previous_id(self, item: dict[str, Any]) -> str | None:
        index = self.items.index(item)
        return self.items[index - 1]["id"] if index else None

    async def _add_item(self, item: dict[str, Any]) -> None:
        previous = self._last_item_id()
        self.items.append(item)
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self._send({"type": kind, "previous_item_id": previous, "item": item})

    async def _refuse(self, event: dict[str, Any], code: str, param: str, message: str) -> None:
        """Answer `event` with an `error` event, changing nothing."""
        await self._error(message, code=code, param=param, event_id=event.get("event_id"))

    async def _error(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        await self._send({"type": "error", "error": _error(message, code, param, event_id)})

    async def _send(self, event: dict[str, Any]) -> None:
        # A copy: items and the configuration change after they are sent.
        sent = {"event_id": _id("event"), **json.loads(json.dumps(event))}
        self.sent.append(sent)
        await self._socket.send_text(json.dumps(sent))


def _error(
    message: str, code: str | None, param: str | None, event_id: str | None
) -> dict[str, Any]:
    return {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": event_id,
    }


async def _refuse_key(socket: WebSocket) -> None:
    error = _error("Incorrect API key provided.", "invalid_api_key", None, None)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await socket.send_text(
            json.dumps({"type": "error", "event_id": _id("event"), "error": error})
        )
        await socket.close(code=INVALID_KEY_CLOSE, reason="invalid_request_error.invalid_api_key")


def _default_config(model: str | None) -> dict[str, Any]:
    """A new session's configuration, as `session.created` shows it."""
    pcm: dict[str, Any] = {"type": "audio/pcm", "rate": 24_000}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": _id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": pcm,
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": pcm, "voice": "marin", "speed": 1.0},
        },
    }


def _session_problem(update: object) -> tuple[str, str, str] | None:
    """What GA refuses in a `session.update`'s session, as (code, param, message), if
    anything: a missing type, a field it does not know, a format the fake does not speak."""
    if not isinstance(update, dict):
        return "missing_required_parameter", "session", "Missing required parameter: 'session'."
    if "type" not in update:
        return (
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        )
    if update["type"] != "realtime":
        return "invalid_value", "session.type", "The fake serves realtime sessions only."
    for name in update:
        if name not in SESSION_FIELDS:
            return "unknown_parameter", f"session.{name}", f"Unknown parameter: 'session.{name}'."
    audio = update.get("audio", {})
    if not isinstance(audio, dict):
        return "invalid_type", "session.audio", "Invalid type for 'session.audio'."
    for direction, settings in audio.items():
        param = f"session.audio.{direction}"
        if direction not in AUDIO_FIELDS or not isinstance(settings, dict):
            return "unknown_parameter", param, f"Unknown parameter: '{param}'."
        for name in settings:
            if name not in AUDIO_FIELDS[direction]:
                return (
                    "unknown_parameter",
                    f"{param}.{name}",
                    f"Unknown parameter: '{param}.{name}'.",
                )
        if "format" in settings and (problem := _format_problem(settings["format"], param)):
            return problem
        detection = settings.get("turn_detection")
        if isinstance(detection, dict) and detection.get("type") not in TURN_DETECTIONS:
            return (
                "invalid_value",
                f"{param}.turn_detection.type",
                f"Invalid value: '{detection.get('type')}'. Supported values are: "
                f"{sorted(TURN_DETECTIONS)}.",
            )
    return None


def _format_problem(audio_format: object, param: str) -> tuple[str, str, str] | None:
    settings = audio_format if isinstance(audio_format, dict) else {}
    kind, rate = settings.get("type"), settings.get("rate", 24_000)
    if kind not in AUDIO_FORMATS:
        return (
            "invalid_value",
            f"{param}.format.type",
            f"Invalid value: '{kind}'. Supported values are: {sorted(AUDIO_FORMATS)}.",
        )
    if kind == "audio/pcm" and rate != 24_000:
        return (
            "invalid_value",
            f"{param}.format.rate",
            f"Invalid value: {rate}. Supported values are: [24000].",
        )
    return None


def _merged(config: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`config` with `update`'s fields, `audio.input` and `audio.output` field by field."""
    merged = {**config, **{name: value for name, value in update.items() if name != "audio"}}
    audio = update.get("audio", {})
    merged["audio"] = {
        direction: {**settings, **audio.get(direction, {})}
        for direction, settings in config["audio"].items()
    }
    return merged


def _rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def _tone(count: int, sample_rate: int) -> npt.NDArray[np.int16]:
    """`count` samples of the quiet 440 Hz tone the fake speaks with."""
    wave = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * np.arange(count) / sample_rate)
    return wave.astype(np.int16)
