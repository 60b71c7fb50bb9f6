"""What the events of a call say, as the facts analytics records.

Each fact is an absolute statement ("the call started at t", "chunk 2 of reply r says x"), so
recording it twice, or before a fact it logically follows, leaves the same records behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from voicebus_contracts import AnsweredBy, Direction, LatencyBreakdown, StageStamps, Transport


@dataclass(frozen=True)
class CallOpened:
    call_id: str
    transport: Transport
    direction: Direction
    agent_id: str
    from_number: str | None
    to_number: str | None
    started_at: datetime


@dataclass(frozen=True)
class CallClosed:
    call_id: str
    ended_at: datetime
    reason: str


@dataclass(frozen=True)
class CallAnswered:
    """Who answered an outbound call, as the carrier detected it."""

    call_id: str
    answered_by: AnsweredBy


@dataclass(frozen=True)
class WorkflowProgress:
    """Where the call's workflow was at `at`, and every variable it had collected by then: a
    later progress says all an earlier one did."""

    call_id: str
    node: str
    variables: Mapping[str, str]
    at: datetime


@dataclass(frozen=True)
class CallerTurn:
    """What the caller said in one turn."""

    call_id: str
    turn_id: str
    text: str
    ended_at: datetime | None
    """End of the caller's speech, where the gateway stamped it."""
    created_at: datetime


@dataclass(frozen=True)
class ReplyText:
    """One chunk of the agent's reply."""

    call_id: str
    reply_id: str
    in_reply_to: str | None
    seq: int
    text: str
    created_at: datetime


@dataclass(frozen=True)
class ReplyPlayback:
    """The caller started hearing a reply: the end of the turn's latency chain."""

    call_id: str
    reply_id: str
    started_at: datetime
    created_at: datetime
    stamps: StageStamps
    latency: LatencyBreakdown


@dataclass(frozen=True)
class ReplyInterrupted:
    """The caller cut into a reply, and it was cancelled at `at`."""

    call_id: str
    reply_id: str
    at: datetime


@dataclass(frozen=True)
class ToolCallMade:
    """The agent's model called a tool at `at`."""

    call_id: str
    tool_call_id: str
    name: str
    arguments: str
    """As the model wrote them (JSON text)."""
    at: datetime


@dataclass(frozen=True)
class ToolCallReturned:
    """A tool answered the model at `at`, after `duration_ms`; `failed` if it could not."""

    call_id: str
    tool_call_id: str
    name: str
    result: str
    failed: bool
    duration_ms: int
    at: datetime


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt to tell a webhook that a call ended: the receiver's status code, or why
    there was none."""

    call_id: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    at: datetime
