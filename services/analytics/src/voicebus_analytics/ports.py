"""The analytics service's port: where the records of calls are kept."""

from __future__ import annotations

from typing import Protocol

from voicebus_analytics.records import (
    CallAnswered,
    CallClosed,
    CallerTurn,
    CallOpened,
    ReplyPlayback,
    ReplyText,
    WorkflowProgress,
)
from voicebus_analytics.views import CallDetail, CallSummary


class CallStore(Protocol):
    """Records the facts of calls and answers questions about them.

    Every write is an upsert keyed by the fact's natural identity, so writes are idempotent and
    may arrive in any order: a turn or reply chunk seen before its call creates the call's row,
    which later facts complete.
    """

    async def open_call(self, call: CallOpened) -> None: ...

    async def close_call(self, call: CallClosed) -> None: ...

    async def record_answer(self, answer: CallAnswered) -> None: ...

    async def record_workflow(self, progress: WorkflowProgress) -> None:
        """Keep the call's workflow node and variables as of its latest progress: a progress
        older than the one kept (redelivered, or late) changes nothing."""
        ...

    async def record_caller_turn(self, turn: CallerTurn) -> None: ...

    async def record_reply_text(self, text: ReplyText) -> None:
        """Add a chunk to the reply's agent turn, whose text is its chunks in `seq` order."""
        ...

    async def record_playback(self, playback: ReplyPlayback) -> None: ...

    async def calls(self, *, limit: int, offset: int) -> list[CallSummary]:
        """Calls, newest first."""
        ...

    async def call(self, call_id: str) -> CallDetail | None:
        """The call with its turns in conversation order, or None if it is unknown."""
        ...
