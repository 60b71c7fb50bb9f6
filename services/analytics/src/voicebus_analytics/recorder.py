"""The analytics core: turns the events of calls into records in a CallStore.

Plain Python: it takes envelopes and a store; the app module feeds it from the bus. What follows
a call's end (its post-call results, its webhook) is left to a FollowUp, in the background.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, assert_never

from pydantic import Field

from voicebus_analytics.follow_up import FollowUp
from voicebus_analytics.ports import CallStore
from voicebus_analytics.records import (
    CallAnswered,
    CallClosed,
    CallerTurn,
    CallOpened,
    ReplyInterrupted,
    ReplyPlayback,
    ReplyText,
    ToolCallMade,
    ToolCallReturned,
    WorkflowProgress,
)
from voicebus_contracts import (
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    CallStatusChanged,
    DtmfReceived,
    Envelope,
    FinalTranscript,
    LatencyBreakdown,
    ReplyCancelled,
    ReplyPaused,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
)
from voicebus_runtime.metrics import observe_turn
from voicebus_runtime.redaction import redact_event

RecordedEvent = Annotated[
    CallStarted
    | CallEnded
    | CallStatusChanged
    | DtmfReceived
    | CallAnsweredBy
    | FinalTranscript
    | ReplyTextChunk
    | ReplyCancelled
    | ReplyPlaybackStarted
    | ReplyPaused
    | ToolCalled
    | ToolReturned
    | WorkflowProgressed,
    Field(discriminator="type"),
]
"""Every event of the calls, transcripts, replies, playback and tools topics analytics reads."""


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Recorder:
    """Records each event of a call as the fact it states; once a call's end is recorded,
    hands the call to `follow_up`.

    With `redact_pii`, what was said is recorded redacted (`redaction.redact_event`): the
    personal data it held is never stored, so neither the API, the exports, the post-call
    model nor the webhooks see it."""

    def __init__(
        self, *, store: CallStore, follow_up: FollowUp | None = None, redact_pii: bool = False
    ) -> None:
        self._store = store
        self._follow_up = follow_up
        self._redact_pii = redact_pii

    async def record(self, env: Envelope[RecordedEvent]) -> None:
        call_id, created_at, stamps = env.call_id, _utc(env.created_at), env.stamps
        event = redact_event(env.event) if self._redact_pii else env.event
        match event:
            case CallStarted() as started:
                await self._store.open_call(
                    CallOpened(
                        call_id=call_id,
                        transport=started.transport,
                        direction=started.direction,
                        agent_id=started.agent_id,
                        from_number=started.from_number,
                        to_number=started.to_number,
                        started_at=created_at,
                    )
                )
            case CallEnded() as ended:
                await self._store.close_call(
                    CallClosed(call_id=call_id, ended_at=created_at, reason=ended.reason)
                )
                if self._follow_up is not None:
                    self._follow_up.call_ended(call_id)
            case FinalTranscript() as transcript:
                await self._store.record_caller_turn(
                    CallerTurn(
                        call_id=call_id,
                        turn_id=transcript.turn_id,
                        text=transcript.text,
                        ended_at=None if stamps.speech_ended is None else _utc(stamps.speech_ended),
                        created_at=created_at,
                    )
                )
            case ReplyTextChunk() as chunk:
                await self._store.record_reply_text(
                    ReplyText(
                        call_id=call_id,
                        reply_id=chunk.reply_id,
                        in_reply_to=chunk.in_reply_to,
                        seq=chunk.seq,
                        text=chunk.text,
                        created_at=created_at,
                    )
                )
            case ReplyPlaybackStarted() as playback:
                started_at = stamps.playback_started
                latency = LatencyBreakdown.of(stamps)
                await self._store.record_playback(
                    ReplyPlayback(
                        call_id=call_id,
                        reply_id=playback.reply_id,
                        started_at=created_at if started_at is None else _utc(started_at),
                        created_at=created_at,
                        stamps=stamps,
                        latency=latency,
                    )
                )
                # The turn latency histograms (/metrics): each turn counted where it is
                # recorded, once per delivery.
                observe_turn(latency)
            case ReplyCancelled() as cancelled:
                await self._store.record_interruption(
                    ReplyInterrupted(call_id=call_id, reply_id=cancelled.reply_id, at=created_at)
                )
            case CallAnsweredBy() as answered:
                await self._store.record_answer(
                    CallAnswered(call_id=call_id, answered_by=answered.answered_by)
                )
            case WorkflowProgressed() as progressed:
                await self._store.record_workflow(
                    WorkflowProgress(
                        call_id=call_id,
                        node=progressed.node,
                        variables=progressed.variables,
                        at=created_at,
                    )
                )
            case ToolCalled() | ToolReturned() as tool:
                await self._record_tool(call_id, tool, at=created_at)
            case CallStatusChanged() | DtmfReceived() | ReplyPaused():
                pass  # statuses, key presses and paused playbacks: not on record yet
            case _:
                assert_never(event)

    async def _record_tool(
        self, call_id: str, event: ToolCalled | ToolReturned, *, at: datetime
    ) -> None:
        """A tool call, or its answer: one row either way, whichever comes first."""
        if isinstance(event, ToolCalled):
            await self._store.record_tool_call(
                ToolCallMade(
                    call_id=call_id,
                    tool_call_id=event.tool_call_id,
                    name=event.name,
                    arguments=event.arguments,
                    at=at,
                )
            )
        else:
            await self._store.record_tool_result(
                ToolCallReturned(
                    call_id=call_id,
                    tool_call_id=event.tool_call_id,
                    name=event.name,
                    result=event.result,
                    failed=event.failed,
                    duration_ms=event.duration_ms,
                    at=at,
                )
            )
