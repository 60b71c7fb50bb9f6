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
Direction = Literal["inbound", "outbound"]
CallStatus = Literal[
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
]
"""A phone call's progress as the carrier reports it (Twilio's call statuses)."""
AnsweredBy = Literal[
    "human",
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
    "unknown",
]
"""Who answered an outbound call, as the carrier's answering-machine detection decided (Twilio's
`AnsweredBy`): a `machine_end_*` has finished its greeting, so a message left now is recorded."""
TERMINAL_CALL_STATUSES: frozenset[str] = frozenset(
    {"completed", "busy", "no-answer", "failed", "canceled"}
)
DTMF_DIGITS = "0123456789*#ABCD"
_E164 = r"\+[1-9][0-9]{6,14}"
E164_PATTERN = f"^{_E164}$"
"""A phone number in E.164 form: +14155550100."""
MAX_VARIABLES = 64


class Event(BaseModel):
    """Base of every event: frozen and strict about unknown fields and non-finite numbers (JSON
    has no NaN or infinity: they would go out as null and come back refused or as None)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    schema_version: ClassVar[int] = 1


# --- voicebus.calls -------------------------------------------------------------------------


Pipeline = Literal["cascaded", "realtime"]
"""How an agent hears and speaks: speech to text, a language model and text to speech, each a
service of its own (cascaded); or one speech-to-speech model that hears the caller and answers
in its own voice (realtime)."""


class CallStarted(Event):
    """A caller is connected and audio is about to flow."""

    schema_version: ClassVar[int] = 3
    type: Literal["call.started"] = "call.started"
    transport: Transport
    agent_id: str = Field(min_length=1, max_length=128)
    gateway_id: str = Field(min_length=1, max_length=128)
    """The gateway replica holding the caller's socket: audio for the call goes to its topic."""
    audio_in: AudioFormat
    audio_out: AudioFormat
    from_number: str | None = None
    to_number: str | None = None
    direction: Direction = "inbound"
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    """Per-call values the call was placed with (an outbound call's or a campaign row's)."""
    pipeline: Pipeline = "cascaded"
    """How the call's agent hears and speaks, as the agent was when the call started: a realtime
    call's audio goes to `voicebus.audio.in.realtime`, and media, STT and TTS leave it alone."""


class CallEnded(Event):
    """The call is over; nothing more will be said in it."""

    type: Literal["call.ended"] = "call.ended"
    reason: str = Field(max_length=200)


class CallStatusChanged(Event):
    """The carrier moved a phone call to a new status (Twilio's status callback)."""

    type: Literal["call.status"] = "call.status"
    status: CallStatus
    direction: Direction
    from_number: str | None = None
    to_number: str | None = None
    duration_s: int | None = Field(default=None, ge=0)
    """How long the call lasted, once it is over."""


class DtmfReceived(Event):
    """The caller pressed a key."""

    type: Literal["call.dtmf"] = "call.dtmf"
    digit: str = Field(min_length=1, max_length=1, pattern=f"^[{DTMF_DIGITS}]$")


class CallAnsweredBy(Event):
    """The carrier decided who answered an outbound call placed with answering-machine
    detection: a person, or a machine (whose greeting may still be playing)."""

    type: Literal["call.answered_by"] = "call.answered_by"
    answered_by: AnsweredBy
    detection_ms: int | None = Field(default=None, ge=0)
    """How long the carrier listened before deciding."""


CallEvent = Annotated[
    CallStarted | CallEnded | CallStatusChanged | DtmfReceived | CallAnsweredBy,
    Field(discriminator="type"),
]


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


class UtteranceChunk(Event):
    """More of a caller turn's audio, while the caller is still speaking.

    A turn's chunks, in `seq` order, are its audio so far from the start (the same audio its
    Utterance will carry): speech recognition can listen along, for partial transcripts and to
    transcribe while the end-of-turn silence runs.
    """

    type: Literal["utterance.chunk"] = "utterance.chunk"
    turn_id: str
    seq: int = Field(ge=0)
    audio: AudioBytes = Field(min_length=1, max_length=MAX_UTTERANCE_BYTES)
    format: AudioFormat
    paused: bool = False
    """The caller has fallen silent: the turn may be over, and this chunk holds all its speech
    so far."""


class Utterance(Event):
    """The audio of one caller turn, ready for speech recognition."""

    schema_version: ClassVar[int] = 2
    type: Literal["utterance"] = "utterance"
    turn_id: str
    audio: AudioBytes = Field(min_length=1, max_length=MAX_UTTERANCE_BYTES)
    format: AudioFormat
    duration_ms: int = Field(ge=0, le=MAX_UTTERANCE_MS)
    speech_end_ms: int | None = Field(default=None, ge=0, le=MAX_UTTERANCE_MS)
    """Where in `audio` the caller's last speech ended (the rest is trailing silence), when the
    producer knows."""


UtteranceEvent = Annotated[UtteranceChunk | Utterance, Field(discriminator="type")]


# --- voicebus.transcripts -------------------------------------------------------------------


class FinalTranscript(Event):
    """What the caller said in one turn."""

    schema_version: ClassVar[int] = 2
    type: Literal["transcript.final"] = "transcript.final"
    turn_id: str
    text: str = Field(max_length=MAX_TEXT_CHARS)
    language: str | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    """How long the caller spoke (the utterance's audio), when known."""


class PartialTranscript(Event):
    """What the caller has said so far in a turn still going on: provisional, each one replacing
    the last, until the turn's FinalTranscript."""

    type: Literal["transcript.partial"] = "transcript.partial"
    turn_id: str
    text: str = Field(max_length=MAX_TEXT_CHARS)
    audio_ms: int = Field(ge=0, le=MAX_UTTERANCE_MS)
    """How much of the turn's audio it was heard from."""


# --- voicebus.tools ------------------------------------------------------------------------


class ToolCalled(Event):
    """The agent's model called a tool during a call."""

    type: Literal["tool.called"] = "tool.called"
    tool_call_id: str
    name: str
    arguments: str = Field(max_length=MAX_TEXT_CHARS)
    """The arguments as the model wrote them (JSON text)."""


class ToolReturned(Event):
    """What a tool answered the model, and whether it failed."""

    type: Literal["tool.returned"] = "tool.returned"
    tool_call_id: str
    name: str
    result: str = Field(max_length=MAX_TEXT_CHARS)
    failed: bool
    duration_ms: int = Field(ge=0)


class WorkflowProgressed(Event):
    """The call's workflow moved to a node, or collected variables: where it is now, and every
    variable collected so far (the call record keeps the latest)."""

    type: Literal["workflow.progressed"] = "workflow.progressed"
    node: str = Field(min_length=1, max_length=64)
    previous_node: str | None = Field(default=None, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)


ToolEvent = Annotated[ToolCalled | ToolReturned | WorkflowProgressed, Field(discriminator="type")]


# --- voicebus.replies -----------------------------------------------------------------------


class ReplyTextChunk(Event):
    """One piece (usually a sentence) of the agent's reply, sent as soon as it is known."""

    schema_version: ClassVar[int] = 2
    type: Literal["reply.text"] = "reply.text"
    reply_id: str
    in_reply_to: str | None
    """The caller turn this answers; None for what the agent says unprompted (the greeting)."""
    seq: int = Field(ge=0)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    last: bool
    """No more text follows for this reply."""
    voiced: bool = False
    """The agent's model spoke it (a realtime call): its audio went to the gateway already,
    and TTS leaves it alone; the text is what the model said, for the record."""


class ReplyCancelled(Event):
    """The caller interrupted this reply: nothing more of it is to be synthesized or played."""

    type: Literal["reply.cancelled"] = "reply.cancelled"
    reply_id: str
    heard_text: str = Field(max_length=MAX_TEXT_CHARS)
    """What the caller heard of it before the interruption."""


ReplyEvent = Annotated[ReplyTextChunk | ReplyCancelled, Field(discriminator="type")]


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


class HangUp(Event):
    """End the call: the gateway holding it closes the caller's stream."""

    schema_version: ClassVar[int] = 2
    type: Literal["control.hang_up"] = "control.hang_up"
    reason: str = Field(default="hung up", max_length=200)
    after_reply: str | None = None
    """Let the caller hear this reply to its end first (a goodbye); None: at once."""


class TransferCall(Event):
    """Hand the caller over to another number (a cold transfer); the call leaves voicebus."""

    type: Literal["control.transfer"] = "control.transfer"
    to: str = Field(pattern=rf"^({_E164}|sip:[^\s<>]{{3,200}})$")
    """An E.164 number (+14155550100) or a SIP URI."""


class SendDtmf(Event):
    """Play DTMF tones to the other end (an IVR the agent is navigating)."""

    type: Literal["control.send_dtmf"] = "control.send_dtmf"
    digits: str = Field(min_length=1, max_length=64, pattern=f"^[{DTMF_DIGITS}w]+$")
    """Digits to press; `w` waits half a second, as in Twilio's sendDigits."""


class PausePlayback(Event):
    """The caller started speaking: stop the agent's audio at once, ready to resume or cancel it."""

    type: Literal["control.pause_playback"] = "control.pause_playback"
    turn_id: str
    """The caller turn that started."""


class ResumePlayback(Event):
    """The caller's sound was not an interruption (a backchannel, a cough): carry on speaking."""

    type: Literal["control.resume_playback"] = "control.resume_playback"


class CancelReply(Event):
    """Drop the rest of a reply, queued or still to come: the caller interrupted it."""

    type: Literal["control.cancel_reply"] = "control.cancel_reply"
    reply_id: str


class ClearPlayback(Event):
    """Drop the reply audio queued for the caller and what the transport has buffered."""

    type: Literal["control.clear_playback"] = "control.clear_playback"


CallCommand = (
    HangUp | TransferCall | SendDtmf | ClearPlayback | PausePlayback | ResumePlayback | CancelReply
)
"""What an agent, media or the API can ask of a live call's gateway replica."""
GatewayEvent = Annotated[
    OutboundAudioChunk
    | HangUp
    | TransferCall
    | SendDtmf
    | ClearPlayback
    | PausePlayback
    | ResumePlayback
    | CancelReply,
    Field(discriminator="type"),
]
"""What a gateway replica's own topic carries: reply audio and control for its calls."""


# --- voicebus.playback ----------------------------------------------------------------------


class ReplyPlaybackStarted(Event):
    """The gateway sent the first audio of a reply to the caller; its stamps close the turn."""

    type: Literal["playback.started"] = "playback.started"
    reply_id: str


class ReplyPaused(Event):
    """The caller started speaking over a reply, and its playback was paused.

    Says how far the caller had heard it: the text chunks (sentences) before `sentence` whole,
    and about `fraction` of sentence `sentence` (from the chunks whose marks were echoed).
    """

    type: Literal["playback.paused"] = "playback.paused"
    reply_id: str
    turn_id: str
    """The caller turn that started speaking."""
    sentence: int = Field(ge=0)
    fraction: float = Field(ge=0.0, le=1.0)


PlaybackEvent = Annotated[ReplyPlaybackStarted | ReplyPaused, Field(discriminator="type")]


# --- voicebus.heartbeats --------------------------------------------------------------------


class ServiceHeartbeat(Event):
    """A service instance is alive and connected to the bus."""

    type: Literal["service.heartbeat"] = "service.heartbeat"
    service: str
    instance: str
