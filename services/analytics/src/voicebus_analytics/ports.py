"""The analytics service's port: where the records of calls are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voicebus_analytics.post_call import Conclusion
from voicebus_analytics.records import (
    CallAnswered,
    CallClosed,
    CallerTurn,
    CallOpened,
    DeliveryAttempt,
    ReplyInterrupted,
    ReplyPlayback,
    ReplyText,
    WorkflowProgress,
)
from voicebus_analytics.views import (
    CallDetail,
    CallExport,
    CallStatus,
    CallSummary,
    Summary,
    WebhookDelivery,
)
from voicebus_contracts import Transport
from voicebus_contracts.agents import AgentSpec, PostCall


@dataclass(frozen=True)
class CallFilter:
    """Which calls a question is about: those meeting every condition given (None: any)."""

    agent_id: str | None = None
    status: CallStatus | None = None
    transport: Transport | None = None
    started_after: datetime | None = None
    """Calls started at or after this instant."""
    started_before: datetime | None = None
    """Calls started before this instant."""
    text: str | None = None
    """Calls in which either side said this, in any letter case."""


ANY_CALL = CallFilter()


class CallStore(Protocol):
    """Records the facts of calls and answers questions about them.

    Every write is an upsert keyed by the fact's natural identity, so writes are idempotent and
    may arrive in any order: a turn or reply chunk seen before its call creates the call's row,
    which later facts complete.
    """

    async def open_call(self, call: CallOpened) -> None: ...

    async def close_call(self, call: CallClosed) -> None: ...

    async def record_answer(self, answer: CallAnswered) -> None: ...

    async def conclude_call(self, call_id: str, conclusion: Conclusion, *, at: datetime) -> bool:
        """Keep the call's post-call results, drawn at `at`, unless it has some already: True
        when these were kept, so a redelivered end of the call concludes nothing more."""
        ...

    async def record_delivery(self, delivery: DeliveryAttempt) -> None: ...

    async def deliveries(self, call_id: str) -> list[WebhookDelivery]:
        """The attempts to tell the call's webhook it ended, in the order they were made."""
        ...

    async def record_workflow(self, progress: WorkflowProgress) -> None:
        """Keep the call's workflow node and variables as of its latest progress: a progress
        older than the one kept (redelivered, or late) changes nothing."""
        ...

    async def record_caller_turn(self, turn: CallerTurn) -> None: ...

    async def record_reply_text(self, text: ReplyText) -> None:
        """Add a chunk to the reply's agent turn, whose text is its chunks in `seq` order."""
        ...

    async def record_playback(self, playback: ReplyPlayback) -> None: ...

    async def record_interruption(self, interruption: ReplyInterrupted) -> None:
        """Mark the reply's agent turn interrupted, ended when it was cancelled."""
        ...

    async def calls(
        self, matching: CallFilter = ANY_CALL, *, limit: int, offset: int
    ) -> list[CallSummary]:
        """The calls `matching`, newest first."""
        ...

    async def call(self, call_id: str) -> CallDetail | None:
        """The call with its turns in conversation order, or None if it is unknown."""
        ...

    def export(self, matching: CallFilter = ANY_CALL) -> AsyncIterator[CallExport]:
        """Every call `matching`, newest first, with the figures of its turns: read a batch at a
        time as they are consumed, so an export of any size fits in memory."""
        ...

    async def summary(self, matching: CallFilter = ANY_CALL) -> Summary:
        """The figures of the calls `matching` (of the newest of them, when too many match)."""
        ...


class Agents(Protocol):
    """The agents as announced (voicebus_runtime.agents.AgentDirectory)."""

    def get(self, agent_id: str) -> AgentSpec | None: ...


class CallEndedListener(Protocol):
    """Told of each ended call, once, with its post-call results."""

    def call_ended(self, call: CallDetail, post_call: PostCall) -> None:
        """Take note of `call`; return at once (any work it starts runs in the background)."""
        ...
