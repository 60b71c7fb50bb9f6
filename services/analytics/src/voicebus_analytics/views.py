"""What the analytics API answers: calls and their turns, timestamps as ISO-8601 UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from voicebus_contracts import AnsweredBy, LatencyBreakdown, Transport

CallStatus = Literal["in-progress", "completed"]
Role = Literal["user", "agent"]


class CallSummary(BaseModel):
    """One call without its turns.

    Fields only CallStarted tells are None while its event has not been recorded yet.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    call_id: str
    status: CallStatus
    agent_id: str | None
    transport: Transport | None
    from_number: str | None
    to_number: str | None
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


class Turn(BaseModel):
    """One turn of the conversation: the caller's (`user`) or the agent's reply (`agent`).

    An agent turn's `turn_id` is its reply id; `latency` is known once its playback started.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    turn_id: str
    text: str
    started_at: datetime | None
    ended_at: datetime | None
    in_reply_to: str | None
    latency: LatencyBreakdown | None


class CallDetail(CallSummary):
    """One call with who answered it, what its workflow collected, and its turns in
    conversation order."""

    answered_by: AnsweredBy | None
    """Who answered an outbound call, when the carrier detected it."""
    workflow_node: str | None
    """The node the call's workflow is at, or ended at; None for a call without a workflow."""
    variables: dict[str, str]
    """Every variable the workflow collected."""
    turns: list[Turn]
