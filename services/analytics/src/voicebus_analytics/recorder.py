"""The analytics core: turns the events of calls into records in a CallStore.

Plain Python: it takes envelopes and a store; the app module feeds it from the bus.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, assert_never

from pydantic import Field

from voicebus_analytics.ports import Agents, CallEndedListener, CallStore
from voicebus_analytics.post_call import conclude
from voicebus_analytics.records import (
    CallAnswered,
    CallClosed,
    CallerTurn,
    CallOpened,
    ReplyInterrupted,
    ReplyPlayback,
    ReplyText,
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
from voicebus_contracts.agents import PostCall
from voicebus_runtime.metrics import observe_turn

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
    """Records each event of a call as the fact it states; at its end, draws the post-call
    results (for the call's agent among `agents`) and tells `listener` of the call."""

    def __init__(
        self,
        *,
        store: CallStore,
        agents: Agents | None = None,
        listener: CallEndedListener | None = None,
    ) -> None:
        self._store = store
        self._agents = agents
        self._listener = listener

    async def record(self, env: Envelope[RecordedEvent]) -> None:
        call_id, created_at, stamps = env.call_id, _utc(env.created_at), env.stamps
        match env.event:
            case CallStarted() as started:
                await self._store.open_call(
                    CallOpened(
                        call_id=call_id,
                        transport=started.transport,
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
                await self._conclude(call_id, at=created_at)
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
            case (
                CallStatusChanged() | DtmfReceived() | ReplyPaused() | ToolCalled() | ToolReturned()
            ):
                pass  # statuses, key presses, paused playbacks and tool calls: not on record yet
            case _:
                assert_never(env.event)

    async def _conclude(self, call_id: str, *, at: datetime) -> None:
        """Draw the ended call's post-call results, once: a redelivered end does nothing more.

        Drawn from what is recorded when the end arrives: a turn of another topic recorded
        after it is not in them.
        """
        call = await self._store.call(call_id)
        if call is None:
            return
        agent = None
        if self._agents is not None and call.agent_id is not None:
            agent = self._agents.get(call.agent_id)
        post_call = PostCall() if agent is None else agent.post_call
        if not await self._store.conclude_call(call_id, conclude(call, post_call), at=at):
            return
        concluded = await self._store.call(call_id)
        if self._listener is not None and concluded is not None:
            self._listener.call_ended(concluded, post_call)
