"""The analytics service's ports: where the records of calls are kept, the agents they belong to,
who is told of an ended call, and the language model that judges one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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
    ToolCallMade,
    ToolCallReturned,
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
from voicebus_contracts import Direction, Transport
from voicebus_contracts.agents import AgentSpec, LanguageModel, PostCall


@dataclass(frozen=True)
class CallFilter:
    """Which calls a question is about: those meeting every condition given (None: any)."""

    agent_id: str | None = None
    status: CallStatus | None = None
    transport: Transport | None = None
    direction: Direction | None = None
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

    async def record_notified(self, call_id: str, *, at: datetime) -> None:
        """Telling the concluded call's webhook is over (or there was none to tell)."""
        ...

    async def unconcluded_calls(self) -> list[str]:
        """The ended calls without post-call results, the earliest ended first."""
        ...

    async def unnotified_calls(self) -> list[str]:
        """The concluded calls whose webhook was not yet told, the earliest concluded first."""
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

    async def record_tool_call(self, call: ToolCallMade) -> None: ...

    async def record_tool_result(self, result: ToolCallReturned) -> None: ...

    async def calls(
        self, matching: CallFilter = ANY_CALL, *, limit: int, offset: int
    ) -> list[CallSummary]:
        """The calls `matching`, newest first."""
        ...

    async def call(self, call_id: str) -> CallDetail | None:
        """The call with its turns in conversation order and its tool calls in the order they
        were called, or None if it is unknown."""
        ...

    def export(self, matching: CallFilter = ANY_CALL) -> AsyncIterator[CallExport]:
        """Every call `matching`, newest first, with the figures of its turns: read a batch at a
        time as they are consumed, so an export of any size fits in memory."""
        ...

    async def summary(self, matching: CallFilter = ANY_CALL) -> Summary:
        """The figures of the calls `matching` (of the newest of them, when too many match)."""
        ...


class Agents(Protocol):
    """The agents as announced (catalog.AgentCatalog)."""

    def get(self, agent_id: str) -> AgentSpec | None: ...


class CallEndedListener(Protocol):
    """Told of each concluded call, with its post-call results."""

    async def call_ended(self, call: CallDetail, post_call: PostCall) -> None:
        """Tell whoever `post_call` names of `call`; return once that is over (told, refused
        or given up on). Raising leaves it to be done again when analytics starts."""
        ...


class JudgementError(Exception):
    """A language model gave no judgement of a call: unreachable, timed out, refused, or its
    answer was not a JSON object."""


class CallJudge(Protocol):
    """A language model that reads an ended call and answers what its agent's post-call section
    asks: a summary, the facts of its extraction schema, whether it succeeded."""

    async def judge(
        self, call: CallDetail, post_call: PostCall, model: LanguageModel
    ) -> Mapping[str, Any]:
        """`model`'s answer, a JSON object whose parts are not checked yet (see
        `post_call.conclude`); JudgementError when it gave none."""
        ...
