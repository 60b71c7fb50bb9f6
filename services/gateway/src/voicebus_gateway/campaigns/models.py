"""What a campaign is: the request that starts one, each row's progress, and the API's answers.

Timestamps are ISO-8601 UTC, like the rest of `/api`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts.events import MAX_VARIABLES, CallStatus
from voicebus_gateway.ports import E164

MAX_ROWS = 10_000

CampaignState = Literal["running", "finished", "cancelled"]
"""running: calls are being placed or awaited; finished: every row reached a final state;
cancelled: no new call is placed (calls already in flight still report their outcome)."""

RowState = Literal["pending", "dialing", CallStatus, "retry-wait"]
"""pending: not dialed yet; dialing: the carrier is being asked; then the call's own status as the
carrier reports it (queued .. in-progress while it is live, completed, busy, no-answer, failed or
canceled once over); retry-wait: busy or no answer, dialed again once `retry_at` has passed."""
ROW_STATES: tuple[RowState, ...] = get_args(RowState)

RETRIED_OUTCOMES: frozenset[CallStatus] = frozenset({"busy", "no-answer"})
"""Outcomes worth another attempt later; any other end is final."""


class CampaignPlan(BaseModel):
    """How a campaign's calls are placed: who speaks, from which number, how many at once."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True)

    agent_id: str | None = Field(default=None, min_length=1, max_length=128)
    """The agent that talks on every call; None: the default agent."""
    from_number: E164 | None = Field(default=None, alias="from")
    """Our caller id; None: the configured default number."""
    concurrency: int = Field(default=2, ge=1, le=100)
    """Most calls of this campaign in flight (dialing or live) at any time."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Most calls placed to one row; only busy and no-answer are tried again."""
    retry_delay_s: float = Field(default=60.0, ge=0, le=86_400)
    """Wait between a busy or unanswered call and the next attempt."""


class CampaignRow(BaseModel):
    """One number to call and the values its agent gets."""

    model_config = ConfigDict(extra="forbid")

    to: E164
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)


class CampaignRequest(CampaignPlan):
    """`POST /api/campaigns`: the plan and the rows to call, in order."""

    rows: list[CampaignRow] = Field(min_length=1, max_length=MAX_ROWS)


class Attempt(BaseModel):
    """One call placed for a row, or refused by the carrier."""

    dialed_at: datetime
    call_id: str | None = None
    """The carrier's id (Twilio's CallSid); None when the carrier refused the call."""
    outcome: CallStatus | None = None
    """The call's final status; None while it is in flight."""
    error: str | None = None


class RowProgress(CampaignRow):
    """A row and how far calling it got."""

    state: RowState = "pending"
    attempts: list[Attempt] = Field(default_factory=list)
    last_error: str | None = None
    """Why the last attempt failed without a call (the carrier's refusal), if it did."""
    retry_at: datetime | None = None
    """When a row in retry-wait is dialed again."""


class CampaignSummary(CampaignPlan):
    """A campaign without its rows: `POST /api/campaigns` and `.../cancel` answer this."""

    model_config = ConfigDict(serialize_by_alias=True)

    id: str
    state: CampaignState
    created_at: datetime
    counts: dict[RowState, int]
    """How many rows are in each state (every state listed, zeros included)."""


class CampaignDetail(CampaignSummary):
    """`GET /api/campaigns/{id}`: the campaign with every row in request order."""

    rows: list[RowProgress]


def count_states(rows: Iterable[RowProgress]) -> dict[RowState, int]:
    counts = dict.fromkeys(ROW_STATES, 0)
    for row in rows:
        counts[row.state] += 1
    return counts


def describe_counts(counts: dict[RowState, int]) -> str:
    """`8 completed, 1 busy, 1 failed`: the non-zero counts, for logs."""
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no rows"
