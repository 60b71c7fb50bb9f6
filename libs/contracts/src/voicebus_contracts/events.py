"""The events of a call, one frozen model each, with a pinned literal `type`.

Grouped by the topic they travel on (see `topics`); each topic's union is discriminated by `type`.
Bump an event's `schema_version` on any change a consumer could notice; the JSON-schema snapshot
test in libs/contracts/tests fails until the snapshot is regenerated on purpose.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts.audio import AudioBytes, AudioFormat

MAX_FRAME_BYTES = 32_000
"""Largest inbound audio frame accepted (1 s of PCM16 at 16 kHz)."""
MAX_UTTERANCE_MS = 20_000
"""Longest utterance media publishes; a longer turn is cut there, so the event fits a message."""
MAX_UTTERANCE_BYTES = MAX_UTTERANCE_MS * 32
"""PCM16 at 16 kHz is 32 bytes per millisecond."""
MAX_TEXT_CHARS = 4_000

Transport = Literal["twilio", "web"]


class Event(BaseModel):
    """Base of every event: frozen and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: ClassVar[int] = 1


# --- voicebus.calls -------------------------------------------------------------------------


class CallStarted(Event):
    """A caller is connected and audio is about to flow."""

    type: Literal["call.started"] = "call.started"
    transport: Transport
    agent_id: str = Field(min_length=1, max_length=128)
    gateway_id: str = Field(min_length=1, max_length=128)
    """The gateway replica holding the caller's socket: audio for the call goes to its topic."""
    audio_in: AudioFormat
    audio_out: AudioFormat
    from_number: str | None = None
    to_number: str | None = None


class CallEnded(Event):
    """The call is over; nothing more will be said in it."""

    type: Literal["call.ended"] = "call.ended"
    reason: str = Field(max_length=200)


CallEvent = Annotated[CallStarted | CallEnded, Field(discriminator="type")]


# --- voicebus.audio.in ----------------------------------------------------------------------


class InboundAudioFrame(Event):
    """A short frame of the caller's audio exactly as the transport delivered it."""

    type: Literal["audio.in"] = "audio.in"
    seq: int = Field(ge=0)
    """Position of the frame in the call's inbound stream, from 0."""
    audio: AudioBytes = Field(min_length=1, max_length=MAX_FRAME_BYTES)
    format: AudioFormat
    received_at: float
    """Wall-clock time the gateway received the frame (epoch seconds)."""


# --- voicebus.speech ------------------------------------------------------------------------


class SpeechStarted(Event):
    """VAD heard the caller start speaking."""

    type: Literal["speech.started"] = "speech.started"
    turn_id: str
    audio_offset_ms: int = Field(ge=0)
    """Where in the call's inbound audio the speech starts."""


class SpeechStopped(Event):
    """The caller's turn is over: VAD heard the end-of-turn silence."""

    type: Literal["speech.stopped"] = "speech.stopped"
    turn_id: str
    audio_offset_ms: int = Field(ge=0)
    """Where in the call's inbound audio the speech ended (before the silence)."""


SpeechEvent = Annotated[SpeechStarted | SpeechStopped, Field(discriminator="type")]


# --- voicebus.utterances --------------------------------------------------------------------


class Utterance(Event):
    """The audio of one caller turn, ready for speech recognition."""

    type: Literal["utterance"] = "utterance"
    turn_id: str
    audio: AudioBytes = Field(min_length=1, max_length=MAX_UTTERANCE_BYTES)
    format: AudioFormat
    duration_ms: int = Field(ge=0, le=MAX_UTTERANCE_MS)


# --- voicebus.transcripts -------------------------------------------------------------------


class FinalTranscript(Event):
    """What the caller said in one turn."""

    type: Literal["transcript.final"] = "transcript.final"
    turn_id: str
    text: str = Field(max_length=MAX_TEXT_CHARS)
    language: str | None = None


# --- voicebus.replies -----------------------------------------------------------------------


class ReplyTextChunk(Event):
    """One piece (usually a sentence) of the agent's reply, sent as soon as it is known."""

    type: Literal["reply.text"] = "reply.text"
    reply_id: str
    in_reply_to: str | None
    """The caller turn this answers; None for what the agent says unprompted (the greeting)."""
    seq: int = Field(ge=0)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    last: bool
    """No more text follows for this reply."""


# --- voicebus.gateway.<gateway_id> ----------------------------------------------------------


class OutboundAudioChunk(Event):
    """Synthesized reply audio, encoded for the call's transport, addressed to its gateway."""

    type: Literal["audio.out"] = "audio.out"
    reply_id: str
    sentence: int = Field(ge=0)
    """The reply text chunk this audio speaks (its `seq`)."""
    seq: int = Field(ge=0)
    """The chunk's position in that sentence's audio: (reply_id, sentence, seq) names it, the
    same however often and by whichever worker the sentence is synthesized."""
    audio: AudioBytes = Field(max_length=MAX_UTTERANCE_BYTES)
    format: AudioFormat
    last: bool
    """The reply's audio ends with this chunk."""


# --- voicebus.playback ----------------------------------------------------------------------


class ReplyPlaybackStarted(Event):
    """The gateway sent the first audio of a reply to the caller; its stamps close the turn."""

    type: Literal["playback.started"] = "playback.started"
    reply_id: str


# --- voicebus.heartbeats --------------------------------------------------------------------


class ServiceHeartbeat(Event):
    """A service instance is alive and connected to the bus."""

    type: Literal["service.heartbeat"] = "service.heartbeat"
    service: str
    instance: str
