"""The web call protocol: the JSON messages both ways and the caller's audio frames, as pure
functions. docs/web-call.md documents it for integrators; keep the two in step.

Audio is binary WebSocket messages of raw PCM16 (no base64, no JSON), both ways; everything else
is a JSON text message with a `type`.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicebus_contracts import (
    DTMF_DIGITS,
    MAX_FRAME_BYTES,
    AudioFormat,
    FinalTranscript,
    PartialTranscript,
    ReplyCancelled,
    ReplyTextChunk,
    SpeechStarted,
    SpeechStopped,
)
from voicebus_gateway.ports import CallActivity
from voicebus_gateway.refusals import problems_of

MAX_TEXT_MESSAGE_CHARS = 4_096
"""Largest JSON message a client may send; its messages are a few dozen characters."""
MAX_MARK_CHARS = 512
"""Longest mark name a `played` message may carry (ours are a reply id and two numbers)."""

ConversationState = Literal["listening", "user_speaking", "thinking", "agent_speaking"]
"""Who has the floor; `voicebus_gateway.web.turns.TurnTaking` defines when each holds."""
ErrorCode = Literal[
    "invalid_audio",
    "invalid_message",
    "invalid_request",
    "gateway_error",
    "unavailable",
    "unauthorized",
]
"""`unavailable`: the gateway is stopping and takes no new call; call again (another replica
answers). `unauthorized`: the call needs a token from `POST /api/web-calls` (or the page's
origin is not allowed); docs/security.md."""


class WebProtocolError(ValueError):
    """A client message or frame that breaks the protocol; it is answered with an error and
    dropped, the call goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- client -> server ------------------------------------------------------------------------


class _ClientMessage(BaseModel):
    # A client newer than this gateway may add fields: they are ignored, not errors.
    model_config = ConfigDict(frozen=True, extra="ignore")


class PressDigit(_ClientMessage):
    """The caller pressed a key of the client's keypad."""

    type: Literal["dtmf"]
    digit: str = Field(pattern=f"^[{DTMF_DIGITS}]$")


class Played(_ClientMessage):
    """The client has played all the agent audio it received before mark `mark`."""

    type: Literal["played"]
    mark: str = Field(min_length=1, max_length=MAX_MARK_CHARS)


class HangUpRequest(_ClientMessage):
    """The caller ends the call."""

    type: Literal["hangup"]


ClientMessage = Annotated[PressDigit | Played | HangUpRequest, Field(discriminator="type")]
_CLIENT_MESSAGE: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_CLIENT_TYPES = ("dtmf", "played", "hangup")


def parse_client_message(raw: str) -> ClientMessage:
    """One JSON message from the client; raises WebProtocolError saying what is wrong with it."""
    if len(raw) > MAX_TEXT_MESSAGE_CHARS:
        raise WebProtocolError(
            "invalid_message",
            f"message of {len(raw)} characters exceeds {MAX_TEXT_MESSAGE_CHARS}",
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        raise WebProtocolError("invalid_message", f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebProtocolError(
            "invalid_message", f"expected a JSON object, got {type(data).__name__}"
        )
    kind = data.get("type")
    if kind not in _CLIENT_TYPES:
        raise WebProtocolError(
            "invalid_message",
            f"unknown message type {kind!r}; expected one of {', '.join(_CLIENT_TYPES)}",
        )
    try:
        return _CLIENT_MESSAGE.validate_python(data)
    except ValidationError as exc:
        # The first location part is the message type (the union's tag), which names no field.
        problems = problems_of(exc, skip_loc=1)
        raise WebProtocolError("invalid_message", f"invalid {kind!r} message: {problems}") from exc


def check_caller_frame(audio: bytes, audio_format: AudioFormat) -> bytes:
    """A binary message of caller audio, if it is whole samples of `audio_format` and fits a
    frame on the bus; raises WebProtocolError otherwise."""
    if not audio:
        raise WebProtocolError("invalid_audio", "empty audio frame")
    if len(audio) > MAX_FRAME_BYTES:
        raise WebProtocolError(
            "invalid_audio",
            f"audio frame of {len(audio)} bytes exceeds {MAX_FRAME_BYTES} "
            "(send 20 ms frames: 640 bytes)",
        )
    sample_bytes = audio_format.bytes_per_sample * audio_format.channels
    if len(audio) % sample_bytes:
        raise WebProtocolError(
            "invalid_audio",
            f"audio frame of {len(audio)} bytes is not whole {sample_bytes}-byte samples",
        )
    return audio


# --- server -> client ------------------------------------------------------------------------


class _ServerMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallStartedMessage(_ServerMessage):
    """The first message: the call is live and what its audio is, both ways."""

    type: Literal["call.started"] = "call.started"
    call_id: str
    agent_id: str
    audio: AudioFormat
    max_frame_bytes: int = MAX_FRAME_BYTES


class MarkMessage(_ServerMessage):
    """Report `name` back in a `played` message once the audio sent before it has played."""

    type: Literal["mark"] = "mark"
    name: str


class ClearMessage(_ServerMessage):
    """Drop the agent audio received but not yet played, and the marks among it (barge-in)."""

    type: Literal["clear"] = "clear"


class SpeechStartedMessage(_ServerMessage):
    type: Literal["speech.started"] = "speech.started"
    turn_id: str


class SpeechStoppedMessage(_ServerMessage):
    type: Literal["speech.stopped"] = "speech.stopped"
    turn_id: str


class PartialTranscriptMessage(_ServerMessage):
    """What has been recognized of a turn still under way; replaces the turn's last one."""

    type: Literal["transcript.partial"] = "transcript.partial"
    turn_id: str
    text: str


class FinalTranscriptMessage(_ServerMessage):
    type: Literal["transcript.final"] = "transcript.final"
    turn_id: str
    text: str


class ReplyTextMessage(_ServerMessage):
    type: Literal["reply.text"] = "reply.text"
    reply_id: str
    in_reply_to: str | None
    seq: int
    text: str
    last: bool


class ReplyCancelledMessage(_ServerMessage):
    """The caller interrupted the reply: it stops here, and the agent keeps only what was heard."""

    type: Literal["reply.cancelled"] = "reply.cancelled"
    reply_id: str
    heard_text: str


class StateMessage(_ServerMessage):
    type: Literal["state"] = "state"
    state: ConversationState


class ErrorMessage(_ServerMessage):
    """A message or frame was refused (and dropped), or the call could not start."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


class CallEndedMessage(_ServerMessage):
    """The last message: the server closes the socket after it."""

    type: Literal["call.ended"] = "call.ended"
    reason: str


ServerMessage = (
    CallStartedMessage
    | MarkMessage
    | ClearMessage
    | SpeechStartedMessage
    | SpeechStoppedMessage
    | PartialTranscriptMessage
    | FinalTranscriptMessage
    | ReplyTextMessage
    | ReplyCancelledMessage
    | StateMessage
    | ErrorMessage
    | CallEndedMessage
)


def activity_message(activity: CallActivity) -> ServerMessage:
    """What the client is told of something that happened in its call."""
    match activity:
        case SpeechStarted(turn_id=turn_id):
            return SpeechStartedMessage(turn_id=turn_id)
        case SpeechStopped(turn_id=turn_id):
            return SpeechStoppedMessage(turn_id=turn_id)
        case PartialTranscript(turn_id=turn_id, text=text):
            return PartialTranscriptMessage(turn_id=turn_id, text=text)
        case FinalTranscript(turn_id=turn_id, text=text):
            return FinalTranscriptMessage(turn_id=turn_id, text=text)
        case ReplyTextChunk():
            return ReplyTextMessage(
                reply_id=activity.reply_id,
                in_reply_to=activity.in_reply_to,
                seq=activity.seq,
                text=activity.text,
                last=activity.last,
            )
        case ReplyCancelled(reply_id=reply_id, heard_text=heard_text):
            return ReplyCancelledMessage(reply_id=reply_id, heard_text=heard_text)
        case _:
            assert_never(activity)
