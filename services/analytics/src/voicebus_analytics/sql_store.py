"""The call store in SQL (PostgreSQL or SQLite), through SQLAlchemy's asyncio engine.

Idempotence comes from natural keys, not from remembering event ids: a call is keyed by its id,
a turn by (call, role, turn id or reply id), a reply chunk by (call, reply, seq), a tool call by
(call, tool call id). Every write is
an upsert that sets the values its event states (or keeps the earliest `created_at`, or, for a
call's workflow, the latest progress), so a redelivered event rewrites what is already there, and
events of different topics commute.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, event, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from voicebus_analytics.latency import percentile, waterfall
from voicebus_analytics.ports import ANY_CALL, CallFilter
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
from voicebus_analytics.summary import CallFacts, ReplyFacts, duration_s, summarize
from voicebus_analytics.tables import (
    Base,
    CallRow,
    ReplyChunkRow,
    ToolCallRow,
    TurnRow,
    WebhookDeliveryRow,
)
from voicebus_analytics.views import (
    CallDetail,
    CallExport,
    CallSummary,
    Summary,
    ToolCall,
    Turn,
    WebhookDelivery,
)
from voicebus_contracts import LatencyBreakdown

IN_PROGRESS = "in-progress"
COMPLETED = "completed"
_LATENCY_FIELDS = tuple(LatencyBreakdown.model_fields)
_TURN_KEY = ("call_id", "role", "turn_id")
_TOOL_CALL_KEY = ("call_id", "tool_call_id")
_NEWEST_FIRST = (CallRow.started_at.desc().nulls_last(), CallRow.call_id)
_CALL_COLUMNS = (
    CallRow.call_id,
    CallRow.status,
    CallRow.agent_id,
    CallRow.transport,
    CallRow.direction,
    CallRow.from_number,
    CallRow.to_number,
    CallRow.started_at,
    CallRow.ended_at,
    CallRow.end_reason,
    CallRow.answered_by,
)
_JoinedRow = Row[*tuple[Any, ...]]
"""A row of a call joined with one of its turns (or none)."""
BATCH = 1000
"""Rows read at a time when calls are read with their turns."""
MAX_SUMMARIZED_CALLS = 10_000
"""A summary covers at most this many calls, the newest, with all their turns."""


def _agent_turn_key(call_id: str, reply_id: str) -> dict[str, str]:
    return {"call_id": call_id, "role": "agent", "turn_id": reply_id}


class SqlCallStore:
    """Keeps calls, turns and reply chunks in the tables of `tables`, created by the migrations."""

    def __init__(self, *, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        if self._sqlite:
            event.listen(engine.sync_engine, "connect", _add_unicode_lower)
        self._insert: Callable[[type[Base]], postgresql.Insert | sqlite.Insert] = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )

    async def _upsert(
        self,
        session: AsyncSession,
        row_type: type[Base],
        values: Mapping[str, Any],
        *,
        key: Iterable[str],
        overwrite: Iterable[str] = (),
        earliest: Iterable[str] = (),
        if_later: str | None = None,
    ) -> None:
        """Insert `values`, or update the existing row: `overwrite` columns take the new value,
        `earliest` columns the smaller of both; with nothing to update, the row is left alone.
        With `if_later`, the row is updated only when that column's new value is later than the
        stored one (or none is stored)."""
        statement = self._insert(row_type).values(**values)
        existing = row_type.__table__.c
        changes: dict[str, ColumnElement[Any]] = {
            column: statement.excluded[column] for column in overwrite
        }
        for column in earliest:
            new, old = statement.excluded[column], existing[column]
            changes[column] = case((new < old, new), else_=old)
        later: ColumnElement[bool] | None = None
        if if_later is not None:
            new, old = statement.excluded[if_later], existing[if_later]
            later = or_(old.is_(None), new > old)
        await session.execute(
            statement.on_conflict_do_update(index_elements=list(key), set_=changes, where=later)
            if changes
            else statement.on_conflict_do_nothing(index_elements=list(key))
        )

    async def _ensure_call(self, session: AsyncSession, call_id: str) -> None:
        """The call's row, so a turn seen before CallStarted has a call to belong to."""
        await self._upsert(
            session, CallRow, {"call_id": call_id, "status": IN_PROGRESS}, key=["call_id"]
        )

    async def open_call(self, call: CallOpened) -> None:
        async with self._sessions.begin() as session:
            # Status is left alone on conflict: a redelivered CallStarted must not reopen a call.
            await self._upsert(
                session,
                CallRow,
                {
                    "call_id": call.call_id,
                    "status": IN_PROGRESS,
                    "transport": call.transport,
                    "direction": call.direction,
                    "agent_id": call.agent_id,
                    "from_number": call.from_number,
                    "to_number": call.to_number,
                    "started_at": call.started_at,
                },
                key=["call_id"],
                overwrite=[
                    "transport",
                    "direction",
                    "agent_id",
                    "from_number",
                    "to_number",
                    "started_at",
                ],
            )

    async def close_call(self, call: CallClosed) -> None:
        async with self._sessions.begin() as session:
            await self._upsert(
                session,
                CallRow,
                {
                    "call_id": call.call_id,
                    "status": COMPLETED,
                    "ended_at": call.ended_at,
                    "end_reason": call.reason,
                },
                key=["call_id"],
                overwrite=["status", "ended_at", "end_reason"],
            )

    async def record_answer(self, answer: CallAnswered) -> None:
        async with self._sessions.begin() as session:
            await self._upsert(
                session,
                CallRow,
                {
                    "call_id": answer.call_id,
                    "status": IN_PROGRESS,
                    "answered_by": answer.answered_by,
                },
                key=["call_id"],
                overwrite=["answered_by"],
            )

    async def conclude_call(self, call_id: str, conclusion: Conclusion, *, at: datetime) -> bool:
        async with self._sessions.begin() as session:
            # One conditional UPDATE: of two deliveries of the end racing, only one concludes.
            concluded = await session.execute(
                update(CallRow)
                .where(CallRow.call_id == call_id, CallRow.concluded_at.is_(None))
                .values(
                    summary=conclusion.summary,
                    extraction=conclusion.extraction,
                    succeeded=conclusion.succeeded,
                    success_reason=conclusion.success_reason,
                    concluded_at=at,
                )
            )
            return bool(concluded.rowcount == 1)  # type: ignore[attr-defined]

    async def record_notified(self, call_id: str, *, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(CallRow).where(CallRow.call_id == call_id).values(notified_at=at)
            )

    async def unconcluded_calls(self) -> list[str]:
        async with self._sessions() as session:
            ended = await session.scalars(
                select(CallRow.call_id)
                .where(CallRow.status == COMPLETED, CallRow.concluded_at.is_(None))
                .order_by(CallRow.ended_at, CallRow.call_id)
            )
            return list(ended)

    async def unnotified_calls(self) -> list[str]:
        async with self._sessions() as session:
            concluded = await session.scalars(
                select(CallRow.call_id)
                .where(CallRow.concluded_at.is_not(None), CallRow.notified_at.is_(None))
                .order_by(CallRow.concluded_at, CallRow.call_id)
            )
            return list(concluded)

    async def record_delivery(self, delivery: DeliveryAttempt) -> None:
        async with self._sessions.begin() as session:
            session.add(
                WebhookDeliveryRow(
                    call_id=delivery.call_id,
                    url=delivery.url,
                    attempt=delivery.attempt,
                    status_code=delivery.status_code,
                    error=delivery.error,
                    at=delivery.at,
                )
            )

    async def deliveries(self, call_id: str) -> list[WebhookDelivery]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.call_id == call_id)
                .order_by(WebhookDeliveryRow.id)
            )
            return [WebhookDelivery.model_validate(row) for row in rows]

    async def record_workflow(self, progress: WorkflowProgress) -> None:
        async with self._sessions.begin() as session:
            # Each progress carries every variable collected so far: the latest replaces the
            # variables whole. Ordered by when the progress was made, not by arrival, since a
            # producer's retry (no idempotence) may land an earlier progress after a later one.
            await self._upsert(
                session,
                CallRow,
                {
                    "call_id": progress.call_id,
                    "status": IN_PROGRESS,
                    "workflow_node": progress.node,
                    "variables": dict(progress.variables),
                    "workflow_at": progress.at,
                },
                key=["call_id"],
                overwrite=["workflow_node", "variables", "workflow_at"],
                if_later="workflow_at",
            )

    async def record_caller_turn(self, turn: CallerTurn) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, turn.call_id)
            await self._upsert(
                session,
                TurnRow,
                {
                    "call_id": turn.call_id,
                    "role": "user",
                    "turn_id": turn.turn_id,
                    "text": turn.text,
                    "ended_at": turn.ended_at,
                    "created_at": turn.created_at,
                },
                key=_TURN_KEY,
                overwrite=["text", "ended_at", "created_at"],
            )

    async def record_reply_text(self, text: ReplyText) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, text.call_id)
            await self._upsert(
                session,
                ReplyChunkRow,
                {
                    "call_id": text.call_id,
                    "reply_id": text.reply_id,
                    "seq": text.seq,
                    "text": text.text,
                },
                key=["call_id", "reply_id", "seq"],
            )
            turn_key = _agent_turn_key(text.call_id, text.reply_id)
            await self._upsert(
                session,
                TurnRow,
                {**turn_key, "in_reply_to": text.in_reply_to, "created_at": text.created_at},
                key=_TURN_KEY,
                overwrite=["in_reply_to"],
                earliest=["created_at"],
            )
            # Rebuilt from all chunks seen so far, so chunks may come in any order. The chunks of
            # one reply share a call, hence a partition, hence one handler at a time.
            chunks = await session.scalars(
                select(ReplyChunkRow.text)
                .where(
                    ReplyChunkRow.call_id == text.call_id, ReplyChunkRow.reply_id == text.reply_id
                )
                .order_by(ReplyChunkRow.seq)
            )
            await session.execute(
                update(TurnRow)
                .filter_by(**turn_key)
                .values(text=" ".join(chunk.strip() for chunk in chunks if chunk.strip()))
            )

    async def record_playback(self, playback: ReplyPlayback) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, playback.call_id)
            await self._upsert(
                session,
                TurnRow,
                {
                    **_agent_turn_key(playback.call_id, playback.reply_id),
                    "created_at": playback.created_at,
                    "started_at": playback.started_at,
                    "stamps": playback.stamps.model_dump(),
                    **playback.latency.model_dump(),
                },
                key=_TURN_KEY,
                overwrite=["started_at", "stamps", *_LATENCY_FIELDS],
                earliest=["created_at"],
            )

    async def record_interruption(self, interruption: ReplyInterrupted) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, interruption.call_id)
            await self._upsert(
                session,
                TurnRow,
                {
                    **_agent_turn_key(interruption.call_id, interruption.reply_id),
                    "created_at": interruption.at,
                    "ended_at": interruption.at,
                },
                key=_TURN_KEY,
                overwrite=["ended_at"],
                earliest=["created_at"],
            )

    async def record_tool_call(self, call: ToolCallMade) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, call.call_id)
            await self._upsert(
                session,
                ToolCallRow,
                {
                    "call_id": call.call_id,
                    "tool_call_id": call.tool_call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "called_at": call.at,
                },
                key=_TOOL_CALL_KEY,
                overwrite=["name", "arguments", "called_at"],
            )

    async def record_tool_result(self, result: ToolCallReturned) -> None:
        async with self._sessions.begin() as session:
            await self._ensure_call(session, result.call_id)
            await self._upsert(
                session,
                ToolCallRow,
                {
                    "call_id": result.call_id,
                    "tool_call_id": result.tool_call_id,
                    "name": result.name,
                    "result": result.result,
                    "failed": result.failed,
                    "duration_ms": result.duration_ms,
                    "returned_at": result.at,
                },
                key=_TOOL_CALL_KEY,
                overwrite=["name", "result", "failed", "duration_ms", "returned_at"],
            )

    def _matching(self, matching: CallFilter) -> list[ColumnElement[bool]]:
        """The conditions on `calls` that select the calls `matching`."""
        conditions: list[ColumnElement[bool]] = []
        if matching.agent_id is not None:
            conditions.append(CallRow.agent_id == matching.agent_id)
        if matching.status is not None:
            conditions.append(CallRow.status == matching.status)
        if matching.transport is not None:
            conditions.append(CallRow.transport == matching.transport)
        if matching.direction is not None:
            conditions.append(CallRow.direction == matching.direction)
        if matching.started_after is not None:
            conditions.append(CallRow.started_at >= matching.started_after)
        if matching.started_before is not None:
            conditions.append(CallRow.started_at < matching.started_before)
        if matching.text is not None:
            # Its own alias of `turns`, so that it correlates with `calls` alone in a query
            # that joins the turns too.
            said = aliased(TurnRow)
            folded = func.unicode_lower(said.text) if self._sqlite else func.lower(said.text)
            conditions.append(
                exists().where(
                    said.call_id == CallRow.call_id,
                    folded.contains(matching.text.lower(), autoescape=True),
                )
            )
        return conditions

    async def calls(
        self, matching: CallFilter = ANY_CALL, *, limit: int, offset: int
    ) -> list[CallSummary]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CallRow)
                .where(*self._matching(matching))
                .order_by(*_NEWEST_FIRST)
                .limit(limit)
                .offset(offset)
            )
            return [CallSummary.model_validate(row) for row in rows]

    async def call(self, call_id: str) -> CallDetail | None:
        async with self._sessions() as session:
            row = await session.get(CallRow, call_id)
            if row is None:
                return None
            turns = [
                _turn(turn)
                for turn in await session.scalars(
                    select(TurnRow)
                    .where(TurnRow.call_id == call_id)
                    .order_by(TurnRow.created_at, TurnRow.id)
                )
            ]
            tool_calls = await session.scalars(
                select(ToolCallRow)
                .where(ToolCallRow.call_id == call_id)
                .order_by(
                    func.coalesce(ToolCallRow.called_at, ToolCallRow.returned_at),
                    ToolCallRow.tool_call_id,
                )
            )
            return CallDetail(
                **CallSummary.model_validate(row).model_dump(),
                answered_by=row.answered_by,
                workflow_node=row.workflow_node,
                variables=row.variables or {},
                turns=turns,
                tool_calls=[ToolCall.model_validate(tool_call) for tool_call in tool_calls],
                interruptions=sum(turn.interrupted for turn in turns),
                summary=row.summary,
                extraction=row.extraction,
                succeeded=row.succeeded,
                success_reason=row.success_reason,
            )

    async def _calls_with_turns(
        self, matching: CallFilter, *figures: ColumnElement[Any]
    ) -> AsyncGenerator[tuple[_JoinedRow, list[_JoinedRow]]]:
        """Each call `matching`, newest first, with `figures` of it and its turns (in no order).

        One query, calls joined with their turns, read a batch at a time: a consistent view of
        any number of calls in bounded memory.
        """
        query = (
            select(
                *_CALL_COLUMNS,
                *figures,
                TurnRow.role,
                TurnRow.ended_at.label("turn_ended_at"),
                *(getattr(TurnRow, name) for name in _LATENCY_FIELDS),
            )
            .outerjoin(TurnRow, TurnRow.call_id == CallRow.call_id)
            .where(*self._matching(matching))
            .order_by(*_NEWEST_FIRST)
            .execution_options(yield_per=BATCH)
        )
        async with self._sessions() as session:
            rows = await session.stream(query)
            call: list[_JoinedRow] = []
            async for row in rows:
                if call and row.call_id != call[0].call_id:
                    yield call[0], [turn for turn in call if turn.role is not None]
                    call = []
                call.append(row)
            if call:
                yield call[0], [turn for turn in call if turn.role is not None]

    async def export(self, matching: CallFilter = ANY_CALL) -> AsyncIterator[CallExport]:
        tool_calls = (
            select(func.count())
            .where(ToolCallRow.call_id == CallRow.call_id)
            .correlate(CallRow)
            .scalar_subquery()
            .label("tool_calls")
        )
        async with aclosing(self._calls_with_turns(matching, tool_calls)) as calls:
            async for call, turns in calls:
                replies = [turn for turn in turns if turn.role == "agent"]
                voice_to_voice = sorted(
                    turn.voice_to_voice_ms for turn in replies if turn.voice_to_voice_ms is not None
                )
                yield CallExport(
                    **CallSummary.model_validate(call).model_dump(),
                    answered_by=call.answered_by,
                    duration_s=duration_s(call.started_at, call.ended_at),
                    turns=len(turns),
                    tool_calls=call.tool_calls,
                    interruptions=sum(_interrupted(turn) for turn in replies),
                    median_voice_to_voice_ms=percentile(voice_to_voice, 0.5),
                )

    async def summary(self, matching: CallFilter = ANY_CALL) -> Summary:
        calls: list[CallFacts] = []
        replies: list[ReplyFacts] = []
        async with aclosing(self._calls_with_turns(matching)) as matched:
            async for call, turns in matched:
                if len(calls) == MAX_SUMMARIZED_CALLS:
                    return summarize(calls, replies, capped=True)
                calls.append(
                    CallFacts(
                        status=call.status,
                        started_at=call.started_at,
                        ended_at=call.ended_at,
                        end_reason=call.end_reason,
                    )
                )
                replies.extend(
                    ReplyFacts(latency=_latency(turn), interrupted=_interrupted(turn))
                    for turn in turns
                    if turn.role == "agent"
                )
        return summarize(calls, replies, capped=False)


def _add_unicode_lower(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() changes ASCII letters only; PostgreSQL's follows the database's
    # locale (every alphabet under a UTF-8 one), as Python's str.lower does.
    dbapi_connection.create_function(
        "unicode_lower", 1, lambda text: None if text is None else text.lower(), deterministic=True
    )


def _cut_off(role: str, ended_at: datetime | None) -> bool:
    """Whether the caller cut off this turn: only a cancellation ends an agent turn."""
    return role == "agent" and ended_at is not None


def _interrupted(row: _JoinedRow) -> bool:
    return _cut_off(row.role, row.turn_ended_at)


def _latency(row: TurnRow | _JoinedRow) -> LatencyBreakdown:
    return LatencyBreakdown(**{name: getattr(row, name) for name in _LATENCY_FIELDS})


def _turn(row: TurnRow) -> Turn:
    latency = None if row.stamps is None else _latency(row)
    return Turn(
        role=row.role,
        turn_id=row.turn_id,
        text=row.text,
        started_at=row.started_at,
        ended_at=row.ended_at,
        in_reply_to=row.in_reply_to,
        latency=latency,
        waterfall=None if latency is None else waterfall(latency),
        interrupted=_cut_off(row.role, row.ended_at),
    )
