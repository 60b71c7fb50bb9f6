"""Twilio Media Streams over WebSocket: the messages both ways, as pure functions.

Message formats: https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

import base64
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from voicebus_contracts import (
    DTMF_DIGITS,
    MAX_FRAME_BYTES,
    TELEPHONE,
    AudioBytes,
    CallStarted,
    Direction,
)
from voicebus_gateway.refusals import problems_of

MAX_MESSAGE_CHARS = 64 * 1024
"""Largest message accepted: a media message of the largest frame we publish fits with room."""

TWILIO_MULAW = "audio/x-mulaw"


class TwilioProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams; the socket skips it."""


class UnsupportedMediaFormatError(TwilioProtocolError):
    """A stream whose audio is not what we play and publish (mu-law 8 kHz mono)."""


class _TwilioModel(BaseModel):
    # Twilio adds fields over time (e.g. `tracks`); unknown ones are ignored, not errors.
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Connected(_TwilioModel):
    event: Literal["connected"]
    protocol: str
    version: str


class MediaFormat(_TwilioModel):
    encoding: str
    sample_rate: int
    channels: int


class StartDetails(_TwilioModel):
    call_sid: str = Field(min_length=1, max_length=128)
    stream_sid: str
    account_sid: str | None = None
    custom_parameters: dict[str, str] = {}
    media_format: MediaFormat


class Start(_TwilioModel):
    event: Literal["start"]
    sequence_number: int
    stream_sid: str
    start: StartDetails


class MediaDetails(_TwilioModel):
    track: str = "inbound"
    chunk: int
    timestamp: int
    """Milliseconds since the stream started."""
    payload: AudioBytes = Field(min_length=1, max_length=MAX_FRAME_BYTES)
    """mu-law 8 kHz mono, base64 on the wire."""


class Media(_TwilioModel):
    event: Literal["media"]
    sequence_number: int
    stream_sid: str
    media: MediaDetails


class MarkDetails(_TwilioModel):
    name: str


class Mark(_TwilioModel):
    """Twilio's echo of a mark we sent: the audio queued before it has played (or was cleared)."""

    event: Literal["mark"]
    sequence_number: int
    stream_sid: str
    mark: MarkDetails


class DtmfDetails(_TwilioModel):
    track: str
    digit: str = Field(pattern=f"^[{DTMF_DIGITS}]$")


class Dtmf(_TwilioModel):
    event: Literal["dtmf"]
    sequence_number: int
    stream_sid: str
    dtmf: DtmfDetails


class StopDetails(_TwilioModel):
    call_sid: str
    account_sid: str | None = None


class Stop(_TwilioModel):
    event: Literal["stop"]
    sequence_number: int
    stream_sid: str
    stop: StopDetails


TwilioMessage = Connected | Start | Media | Mark | Dtmf | Stop

_MODELS: dict[str, type[TwilioMessage]] = {
    "connected": Connected,
    "start": Start,
    "media": Media,
    "mark": Mark,
    "dtmf": Dtmf,
    "stop": Stop,
}


def parse_message(raw: str | bytes) -> TwilioMessage:
    """One message from Twilio; raises TwilioProtocolError saying what is wrong with it."""
    if len(raw) > MAX_MESSAGE_CHARS:
        raise TwilioProtocolError(f"message of {len(raw)} chars exceeds {MAX_MESSAGE_CHARS}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        raise TwilioProtocolError(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TwilioProtocolError(f"expected a JSON object, got {type(data).__name__}")
    event = data.get("event")
    model = _MODELS.get(event) if isinstance(event, str) else None
    if model is None:
        raise TwilioProtocolError(f"unknown event {event!r}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TwilioProtocolError(f"invalid {event!r} message: {problems_of(exc)}") from exc


def check_media_format(start: Start) -> None:
    """Twilio streams mu-law 8 kHz mono; anything else is refused rather than guessed."""
    fmt = start.start.media_format
    if (fmt.encoding, fmt.sample_rate, fmt.channels) != (
        TWILIO_MULAW,
        TELEPHONE.sample_rate,
        TELEPHONE.channels,
    ):
        raise UnsupportedMediaFormatError(
            f"unsupported media format {fmt.encoding} {fmt.sample_rate} Hz x{fmt.channels}; "
            f"expected {TWILIO_MULAW} {TELEPHONE.sample_rate} Hz mono"
        )


def call_started(
    start: Start,
    *,
    gateway_id: str,
    agent_id: str,
    direction: Direction,
    variables: dict[str, str],
) -> CallStarted:
    """The CallStarted a stream's `start` announces; From and To come from its parameters."""
    params = start.start.custom_parameters
    return CallStarted(
        transport="twilio",
        agent_id=agent_id,
        gateway_id=gateway_id,
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
        from_number=params.get("From") or None,
        to_number=params.get("To") or None,
        direction=direction,
        variables=variables,
    )


def media_message(stream_sid: str, audio: bytes) -> str:
    """Audio for Twilio to play to the caller (mu-law 8 kHz mono)."""
    payload = base64.b64encode(audio).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    """Asks Twilio to echo `name` once the audio sent before it has played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drops the audio Twilio has buffered for the caller but not yet played."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})
