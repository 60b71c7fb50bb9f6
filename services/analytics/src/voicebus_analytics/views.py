"""What the analytics API answers: calls, their turns and figures over many calls, timestamps as
ISO-8601 UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from voicebus_contracts import AnsweredBy, Direction, LatencyBreakdown, Transport

CallStatus = Literal["in-progress", "completed"]
Role = Literal["user", "agent"]
Stage = Literal["endpoint", "stt", "first_text", "first_audio", "send"]
"""The stages of an agent turn's latency, named as LatencyBreakdown's fields are (less `_ms`)."""
Service = Literal["media", "stt", "agent", "tts", "gateway"]
Measure = Stage | Literal["voice_to_voice"]
"""A stage of an agent turn's latency, or the whole of it (end of caller speech to playback)."""


class CallSummary(BaseModel):
    """One call without its turns.

    Fields only CallStarted tells are None while its event has not been recorded yet.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    call_id: str
    status: CallStatus
    agent_id: str | None
    transport: Transport | None
    direction: Direction | None
    """Whether the caller called in or the call was placed to them."""
    from_number: str | None
    to_number: str | None
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class WebhookDelivery(BaseModel):
    """One attempt to tell the agent's webhook that the call ended."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    url: str
    attempt: int
    """1 for the first attempt; each retry counts up."""
    status_code: int | None
    """The receiver's answer; None when none came (see `error`)."""
    error: str | None
    """Why the attempt failed or was not made, if it did."""
    at: datetime


class StageSpan(BaseModel):
    """One stage of an agent turn on its waterfall: when it started, counted from the start of
    the turn's first stamped stage, and how long it took (None where it is not known)."""

    model_config = ConfigDict(frozen=True)

    stage: Stage
    by: Service
    """The service whose work the stage is (or, for `send`, the gateway's pacing)."""
    start_ms: float | None
    duration_ms: float | None


class Turn(BaseModel):
    """One turn of the conversation: the caller's (`user`) or the agent's reply (`agent`).

    An agent turn's `turn_id` is its reply id; `latency` and `waterfall` are known once its
    playback started. An agent turn `interrupted` by the caller has the time it was cancelled as
    its `ended_at`; a reply heard to its end has none (no event says when its playback ended).
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    turn_id: str
    text: str
    started_at: datetime | None
    ended_at: datetime | None
    in_reply_to: str | None
    latency: LatencyBreakdown | None
    waterfall: list[StageSpan] | None
    """The stages of `latency` one after the other, in the order a turn goes through them."""
    interrupted: bool


class ToolCall(BaseModel):
    """A tool the agent's model called, and what it answered.

    What only one of its two events tells is None while that event has not been recorded: the
    answer of a tool still running, or the call of one whose answer was recorded first.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    tool_call_id: str
    name: str
    arguments: str | None
    """As the model wrote them (JSON text)."""
    called_at: datetime | None
    result: str | None
    """What the tool answered the model."""
    failed: bool | None
    duration_ms: int | None
    returned_at: datetime | None


class CallDetail(CallSummary):
    """One call with who answered it, what its workflow collected, its turns in conversation
    order and the tools its agent called."""

    answered_by: AnsweredBy | None
    """Who answered an outbound call, when the carrier detected it."""
    workflow_node: str | None
    """The node the call's workflow is at, or ended at; None for a call without a workflow."""
    variables: dict[str, str]
    """Every variable the workflow collected."""
    turns: list[Turn]
    tool_calls: list[ToolCall]
    """In the order they were called."""
    interruptions: int
    """How many of the agent's replies the caller cut off."""
    summary: str | None
    """Once the call is concluded (after its end): the model's summary, or offline the caller's
    first request and the agent's last answer (each cut to 300 characters)."""
    extraction: dict[str, Any] | None
    """Once the call is concluded: each property of the agent's extraction schema, as the model
    drew it from the call where it gave a value that fits the property, else from the workflow
    variable of the same name (typed per the schema), else null; None without a schema."""
    succeeded: bool | None
    """Once the call is concluded: the model's verdict against the agent's `success`, or
    offline every required extracted fact collected and a normal end; None when the agent says
    neither what success is nor what to extract."""
    success_reason: str | None


class CallExport(CallSummary):
    """One call as a row of the CSV export: its record and the figures of its turns."""

    answered_by: AnsweredBy | None
    duration_s: float | None
    """From its start to its end, when both were recorded."""
    turns: int
    """Turns of both sides."""
    tool_calls: int
    """Tools the agent's model called."""
    interruptions: int
    median_voice_to_voice_ms: float | None
    """Over the agent turns whose voice-to-voice latency is known."""


class DailyCalls(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    """A day in UTC."""
    calls: int


class Percentiles(BaseModel):
    """One measure's p50 and p95 over the agent turns it was stamped for."""

    model_config = ConfigDict(frozen=True)

    turns: int
    p50_ms: float | None
    p95_ms: float | None


class Durations(BaseModel):
    """Call durations, over the calls whose start and end were both recorded."""

    model_config = ConfigDict(frozen=True)

    calls: int
    mean_s: float | None
    median_s: float | None


class Summary(BaseModel):
    """Figures over a set of calls and their agent turns."""

    model_config = ConfigDict(frozen=True)

    calls: int
    capped: bool
    """More calls matched than are summarized at once: the figures are the newest ones'."""
    calls_per_day: list[DailyCalls]
    """Days with at least one call started, in order; calls not known to have started are not
    in any."""
    duration: Durations
    latency: dict[Measure, Percentiles]
    """Every stage in the order a turn goes through them, then voice-to-voice."""
    agent_turns: int
    interruptions: int
    """Agent turns the caller cut off."""
    interruption_rate: float | None
    """`interruptions` over `agent_turns`; None without agent turns."""
    statuses: dict[CallStatus, int]
    end_reasons: dict[str, int]
    """Why the ended calls ended, most frequent first."""
