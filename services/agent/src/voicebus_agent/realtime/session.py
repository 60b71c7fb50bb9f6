"""A speech-to-speech model's session, one per call: the port, and its OpenAI Realtime adapter.

A session is the model's side of one call. The caller's audio goes in as it comes (`hear`);
what comes back is told as `SessionEvent`s: the caller heard to start and stop speaking (the
model's own turn detection), what the caller said (transcribed for the record: the model hears
the audio itself), the model's audio and what it said, the tools it calls, and the end of each
response. Telephone audio (G.711 mu-law) goes through as it is; the browser's PCM16 at 16 kHz
is resampled to and from the 24 kHz the model takes.

OpenAI's protocol (GA): https://platform.openai.com/docs/api-reference/realtime
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from voicebus_agent.ports import Message
from voicebus_audio import Resampler, from_mono_pcm16, to_mono_pcm16
from voicebus_contracts import TELEPHONE, AudioFormat
from voicebus_contracts.agents import SECRET_ENV_PREFIX, RealtimeModel

log = logging.getLogger(__name__)

MODEL_PCM_RATE = 24_000
"""The only rate of PCM16 the model takes and gives (`audio/pcm`)."""
MODEL_PCM = AudioFormat(encoding="pcm16", sample_rate=MODEL_PCM_RATE)


@dataclass(frozen=True)
class CallerSpeaking:
    """The model heard the caller start speaking (its turn item `item_id`)."""

    item_id: str
    audio_start_ms: int
    """Where, in the audio this session heard, the speech started."""


@dataclass(frozen=True)
class CallerPaused:
    """The model heard the caller's turn end."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True)
class CallerSaid:
    """What the caller said in turn item `item_id`, transcribed."""

    item_id: str
    text: str


@dataclass(frozen=True)
class ModelAudio:
    """A piece of the model's voice, in the call's format."""

    response_id: str
    item_id: str
    audio: bytes


@dataclass(frozen=True)
class ModelSaid:
    """What the model said in item `item_id` of a response (its audio's transcript)."""

    response_id: str
    item_id: str
    text: str


@dataclass(frozen=True)
class ToolRequested:
    """The model calls a tool; `tool_result` answers it."""

    response_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ResponseDone:
    response_id: str
    status: str
    """completed, cancelled (the caller spoke over it), failed, incomplete."""


SessionEvent = (
    CallerSpeaking
    | CallerPaused
    | CallerSaid
    | ModelAudio
    | ModelSaid
    | ToolRequested
    | ResponseDone
)


class RealtimeSession(Protocol):
    """One call's session with a speech-to-speech model."""

    def events(self) -> AsyncIterator[SessionEvent]:
        """What the model tells, until the session ends."""
        ...

    async def hear(self, audio: bytes) -> None:
        """The caller's audio, in the call's format."""

    async def respond(self, instructions: str | None = None) -> None:
        """Ask the model to speak now (after a tool's result; the greeting, with
        `instructions`); the caller's turns it answers on its own."""

    async def truncate(self, item_id: str, *, audio_end_ms: int) -> None:
        """The caller heard only `audio_end_ms` of the model's item `item_id`: the model's
        memory of it is cut there."""

    async def tool_result(self, call_id: str, output: str) -> None:
        """The result of the tool call `call_id`, for the model."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SessionSetup:
    model: RealtimeModel
    instructions: str
    tools: Sequence[Mapping[str, Any]]
    """The agent's tools as chat-completions function definitions."""
    history: Sequence[Message]
    """The conversation so far (a call another worker held): the new session starts with it."""
    audio: AudioFormat
    """The call's audio, both ways."""


class RealtimeConnector(Protocol):
    async def open(self, setup: SessionSetup) -> RealtimeSession: ...


class RealtimeKeyMissingError(RuntimeError):
    """A realtime agent on OpenAI's endpoint, and no key for it."""


class OpenAIRealtime:
    """Opens sessions with the openai SDK on OpenAI's Realtime API, or on an endpoint speaking
    its protocol (`base_url`: the agent's, else the service's)."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        secrets: Mapping[str, str] = os.environ,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._secrets = secrets
        self._clients: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    async def open(self, setup: SessionSetup) -> OpenAIRealtimeSession:
        model = setup.model
        base_url = model.base_url or self._base_url
        key = self._key_for(model, base_url)
        if key is None and base_url is None:
            raise RealtimeKeyMissingError(
                f"realtime model {model.model} is on OpenAI's endpoint without a key: set "
                "OPENAI_API_KEY (or VOICEBUS_AGENT_REALTIME_API_KEY) for the service's, or the "
                "agent's realtime.api_key_secret"
            )
        client = self._clients.get((base_url, model.api_key_secret))
        if client is None:
            # Local endpoints take any key; OpenAI's own requires one.
            client = AsyncOpenAI(base_url=base_url, api_key=key or "unused")
            self._clients[(base_url, model.api_key_secret)] = client
        # No reconnection by the SDK: a new connection is a new session, which must be primed
        # with the call's history; the caller's next audio does that (RealtimeCalls).
        connection = await client.realtime.connect(model=model.model, max_retries=0).enter()
        try:
            await connection.session.update(session=session_config(setup))  # type: ignore[arg-type]
            for message in setup.history:
                await connection.conversation.item.create(item=history_item(message))  # type: ignore[arg-type]
        except BaseException:
            await connection.close()
            raise
        return OpenAIRealtimeSession(connection, setup.audio)

    def _key_for(self, model: RealtimeModel, base_url: str | None) -> str | None:
        """The agent's own secret if it names one; the service's key for the service's
        endpoint only (an agent's endpoint must not receive it)."""
        if model.api_key_secret is not None:
            return self._secrets.get(SECRET_ENV_PREFIX + model.api_key_secret)
        if base_url != self._base_url:
            return None
        return self._api_key

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()


def audio_format(fmt: AudioFormat) -> dict[str, Any]:
    """The model's name for the call's audio: mu-law as it is, PCM at the model's rate."""
    if fmt == TELEPHONE:
        return {"type": "audio/pcmu"}
    return {"type": "audio/pcm", "rate": MODEL_PCM_RATE}


def session_config(setup: SessionSetup) -> dict[str, Any]:
    model = setup.model
    detection = model.turn_detection
    turn_detection: dict[str, Any] = {
        "type": detection.type,
        "create_response": True,
        # The model stops its own response when the caller speaks over it; what the caller
        # heard of it is cut from its memory (`truncate`).
        "interrupt_response": True,
    }
    if detection.type == "server_vad":
        turn_detection |= {
            "threshold": detection.threshold,
            "prefix_padding_ms": detection.prefix_padding_ms,
            "silence_duration_ms": detection.silence_duration_ms,
        }
    else:
        turn_detection["eagerness"] = detection.eagerness
    fmt = audio_format(setup.audio)
    return {
        "type": "realtime",
        "model": model.model,
        "instructions": setup.instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": fmt,
                "transcription": {"model": model.transcription_model},
                "turn_detection": turn_detection,
            },
            "output": {"format": fmt, "voice": model.voice},
        },
        "tools": [realtime_tool(tool) for tool in setup.tools],
    }


def realtime_tool(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A chat-completions function definition as the Realtime API takes it (flat)."""
    function = definition["function"]
    return {
        "type": "function",
        "name": function["name"],
        "description": function.get("description", ""),
        "parameters": function.get("parameters", {"type": "object", "properties": {}}),
    }


def history_item(message: Message) -> dict[str, Any]:
    if message.role == "user":
        return {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": message.text}],
        }
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": message.text}],
    }


class OpenAIRealtimeSession:
    """A session on one Realtime API connection."""

    def __init__(self, connection: AsyncRealtimeConnection, fmt: AudioFormat) -> None:
        self._connection = connection
        self._format = fmt
        telephone = fmt == TELEPHONE  # mu-law goes through as it is
        self._inward = (
            None if telephone else Resampler(from_rate=fmt.sample_rate, to_rate=MODEL_PCM_RATE)
        )
        self._outward = (
            None if telephone else Resampler(from_rate=MODEL_PCM_RATE, to_rate=fmt.sample_rate)
        )

    async def events(self) -> AsyncIterator[SessionEvent]:
        async for event in self._connection:
            if (told := self._told(event.model_dump())) is not None:
                yield told

    def _told(self, event: dict[str, Any]) -> SessionEvent | None:
        match event["type"]:
            case "input_audio_buffer.speech_started":
                return CallerSpeaking(event["item_id"], event["audio_start_ms"])
            case "input_audio_buffer.speech_stopped":
                return CallerPaused(event["item_id"], event["audio_end_ms"])
            case "conversation.item.input_audio_transcription.completed":
                return CallerSaid(event["item_id"], event["transcript"])
            case "response.output_audio.delta":
                audio = self._from_model(base64.b64decode(event["delta"]))
                return ModelAudio(event["response_id"], event["item_id"], audio)
            case "response.output_audio_transcript.done":
                return ModelSaid(event["response_id"], event["item_id"], event["transcript"])
            case "response.function_call_arguments.done":
                return ToolRequested(
                    event["response_id"], event["call_id"], event["name"], event["arguments"]
                )
            case "response.done":
                response = event["response"]
                return ResponseDone(response["id"], response.get("status") or "completed")
            case "error":
                log.warning("the realtime model reported an error: %s", event["error"])
        return None

    async def hear(self, audio: bytes) -> None:
        encoded = base64.b64encode(self._to_model(audio)).decode("ascii")
        await self._connection.input_audio_buffer.append(audio=encoded)

    async def respond(self, instructions: str | None = None) -> None:
        if instructions is None:
            await self._connection.response.create()
        else:
            await self._connection.response.create(response={"instructions": instructions})

    async def truncate(self, item_id: str, *, audio_end_ms: int) -> None:
        await self._connection.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=audio_end_ms
        )

    async def tool_result(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self._connection.conversation.item.create(item=item)  # type: ignore[arg-type]

    async def close(self) -> None:
        await self._connection.close()

    def _to_model(self, audio: bytes) -> bytes:
        if self._inward is None:
            return audio
        return from_mono_pcm16(self._inward.process(to_mono_pcm16(audio, self._format)), MODEL_PCM)

    def _from_model(self, audio: bytes) -> bytes:
        if self._outward is None:
            return audio
        return from_mono_pcm16(self._outward.process(to_mono_pcm16(audio, MODEL_PCM)), self._format)
