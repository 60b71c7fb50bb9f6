"""One campaign's runner: places its calls, never more than `concurrency` in flight, follows each
to its outcome, and dials busy or unanswered rows again after `retry_delay_s`.

The runner is the only writer of its campaign's rows. Call statuses reach it through the
campaign's inbox in Redis (any replica may receive them), and each step applies them, places the
calls there is room for, and saves the result in one transaction. So a runner starting from Redis,
new or resuming another replica's campaign, starts from a consistent picture.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from voicebus_contracts.events import TERMINAL_CALL_STATUSES, CallStatus
from voicebus_gateway.campaigns.models import (
    RETRIED_OUTCOMES,
    Attempt,
    RowState,
    count_states,
    describe_counts,
)
from voicebus_gateway.campaigns.store import CampaignRecord, CampaignStore, LeaseLostError
from voicebus_gateway.ports import Dialer, DialError, OutboundCall

log = logging.getLogger(__name__)

_LIVE_RANK: dict[RowState, int] = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
"""A live call only moves forward: a late `ringing` does not undo `in-progress`."""

UNKNOWN_DIAL = (
    "the replica placing this call stopped before the carrier answered; not retried, so that "
    "nobody is called twice"
)


class CampaignRunner:
    """Runs one campaign in this replica while it holds the campaign's lease (`runner`)."""

    def __init__(
        self,
        record: CampaignRecord,
        *,
        store: CampaignStore,
        dialer: Dialer,
        runner: str,
        poll_interval_s: float,
        lease_s: float,
        stopping: asyncio.Event,
    ) -> None:
        self._id = record.id
        self._plan = record.plan
        self._rows = record.rows
        self._cancelled = False
        """Seen the campaign cancelled (the first step sees it if it already was)."""
        self._store = store
        self._dialer = dialer
        self._runner = runner
        self._poll_interval_s = poll_interval_s
        self._lease_s = lease_s
        self._stopping = stopping
        self._due: list[tuple[float, int]] = []
        """(epoch seconds, row index) of rows waiting to be dialed, soonest first."""
        self._in_flight: dict[str, int] = {}
        """Row index of each placed call whose final status has not arrived yet."""
        self._changed: set[int] = set()
        self._placed: list[str] = []
        self._ended: list[str] = []
        for index in range(len(self._rows)):
            self._take_over(index)

    def _take_over(self, index: int) -> None:
        """Pick a stored row up where the campaign's previous step left it."""
        row = self._rows[index]
        if row.state in ("pending", "retry-wait"):
            due = row.retry_at.timestamp() if row.retry_at is not None else 0.0
            heapq.heappush(self._due, (due, index))
        elif row.state == "dialing":
            log.warning("campaign %s row %d: %s", self._id, index, UNKNOWN_DIAL)
            self._fail(index, UNKNOWN_DIAL)
        elif row.state in _LIVE_RANK and row.attempts[-1].call_id is not None:
            self._in_flight[row.attempts[-1].call_id] = index

    async def run(self) -> None:
        """Step every poll interval until the campaign is over, another replica takes it over
        (this one stalled past its lease), or this replica stops (the campaign is then handed
        back for another replica to resume)."""
        try:
            while True:
                try:
                    if not await self._step():
                        return
                except RedisError as exc:
                    # What is not saved stays in memory and is saved at a later step.
                    log.warning("campaign %s: Redis failed, trying again: %s", self._id, exc)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll_interval_s)
                if self._stopping.is_set():
                    await self._store.release(self._id, runner=self._runner)
                    log.info("campaign %s: handed back, this replica is stopping", self._id)
                    return
        except LeaseLostError:
            log.warning(
                "campaign %s: another replica took it over, this one stops; calls placed here "
                "that it does not follow: %s",
                self._id,
                ", ".join(self._placed) or "none",
            )
        except Exception:
            log.exception(
                "campaign %s: runner failed; a replica resumes the campaign from Redis once "
                "this one's lease lapses",
                self._id,
            )

    async def _step(self) -> bool:
        """Apply new call statuses, place the calls there is room for; False once it is over."""
        poll = await self._store.poll(self._id, runner=self._runner, lease_s=self._lease_s)
        if poll.state is None:
            log.warning("campaign %s: its keys are gone (expired), the runner stops", self._id)
            return False
        if not poll.lease_held:
            raise LeaseLostError(self._id)
        for call_id, status in poll.statuses:
            self._apply(call_id, status)
        if poll.state == "cancelled" and not self._cancelled:
            self._cancel()
        batch = [] if self._cancelled else self._take_due()
        # `dialing` is saved before the carrier is asked, so a resuming replica knows the call
        # may have been placed.
        try:
            await self._save(statuses_read=len(poll.statuses))
        except RedisError:
            self._put_back(batch)
            raise
        if batch:
            await asyncio.gather(*(self._dial(index) for index in batch))
            await self._save(statuses_read=0)
        if self._in_flight or (self._due and not self._cancelled):
            return True
        state = await self._store.finish(self._id, runner=self._runner)
        log.info("campaign %s %s: %s", self._id, state, describe_counts(count_states(self._rows)))
        return False

    def _apply(self, call_id: str, status: CallStatus) -> None:
        index = self._in_flight.get(call_id)
        if index is None:
            return  # a status repeated or arriving after the call's end
        row = self._rows[index]
        if status not in TERMINAL_CALL_STATUSES:
            if _LIVE_RANK.get(status, -1) > _LIVE_RANK.get(row.state, -1):
                row.state = status
                self._changed.add(index)
            return
        del self._in_flight[call_id]
        self._ended.append(call_id)
        self._changed.add(index)
        row.attempts[-1].outcome = status
        attempts = len(row.attempts)
        if (
            status in RETRIED_OUTCOMES
            and attempts < self._plan.max_attempts
            and not self._cancelled
        ):
            row.state = "retry-wait"
            row.retry_at = datetime.now(UTC) + timedelta(seconds=self._plan.retry_delay_s)
            heapq.heappush(self._due, (row.retry_at.timestamp(), index))
            log.info(
                "campaign %s row %d: call %s ended %s; attempt %d of %d in %g s",
                self._id,
                index,
                call_id,
                status,
                attempts + 1,
                self._plan.max_attempts,
                self._plan.retry_delay_s,
            )
        else:
            row.state = status
            log.info("campaign %s row %d: call %s ended %s", self._id, index, call_id, status)

    def _cancel(self) -> None:
        """No more calls: rows waiting for a retry keep their last outcome."""
        self._cancelled = True
        for _, index in self._due:
            row = self._rows[index]
            if row.state == "retry-wait":
                outcome = row.attempts[-1].outcome
                assert outcome is not None, "a row waits for a retry only after an outcome"
                row.state = outcome
                row.retry_at = None
                self._changed.add(index)
        log.info(
            "campaign %s cancelled: %d rows not dialed again, %d calls still in flight",
            self._id,
            len(self._due),
            len(self._in_flight),
        )
        self._due.clear()

    def _take_due(self) -> list[int]:
        """Rows whose time has come, as many as there are free slots, marked `dialing`."""
        now = time.time()
        batch: list[int] = []
        while (
            self._due
            and self._due[0][0] <= now
            and len(self._in_flight) + len(batch) < self._plan.concurrency
        ):
            _, index = heapq.heappop(self._due)
            row = self._rows[index]
            row.state = "dialing"
            row.retry_at = None
            row.attempts.append(Attempt(dialed_at=datetime.now(UTC)))
            self._changed.add(index)
            batch.append(index)
        return batch

    def _put_back(self, batch: list[int]) -> None:
        """Undo `_take_due` for rows whose `dialing` could not be saved: they were not dialed."""
        for index in batch:
            row = self._rows[index]
            row.attempts.pop()
            row.state = "retry-wait" if row.attempts else "pending"
            row.retry_at = datetime.now(UTC) if row.attempts else None
            heapq.heappush(self._due, (0.0, index))

    async def _dial(self, index: int) -> None:
        row = self._rows[index]
        call = OutboundCall(
            to=row.to,
            from_number=self._plan.from_number,
            agent_id=self._plan.agent_id,
            variables=row.variables,
        )
        log.info(
            "campaign %s row %d: dialing %s (attempt %d of %d)",
            self._id,
            index,
            row.to,
            len(row.attempts),
            self._plan.max_attempts,
        )
        try:
            call_id = await self._dialer.dial(call)
        except DialError as exc:
            log.warning("campaign %s row %d: %s refused: %s", self._id, index, row.to, exc)
            self._fail(index, str(exc))
            return
        except Exception as exc:
            # Whether the carrier took the call is unknown: not retried, so nobody is called twice.
            log.exception("campaign %s row %d: dialing %s failed", self._id, index, row.to)
            self._fail(index, f"dialing failed: {exc!r}")
            return
        row.attempts[-1].call_id = call_id
        row.state = "queued"
        self._in_flight[call_id] = index
        self._placed.append(call_id)
        self._changed.add(index)
        log.info("campaign %s row %d: call %s placed to %s", self._id, index, call_id, row.to)

    def _fail(self, index: int, error: str) -> None:
        row = self._rows[index]
        row.attempts[-1].outcome = "failed"
        row.attempts[-1].error = error
        row.state = "failed"
        row.last_error = error
        self._changed.add(index)

    async def _save(self, *, statuses_read: int) -> None:
        if not (self._changed or self._placed or self._ended or statuses_read):
            return
        await self._store.save(
            self._id,
            runner=self._runner,
            rows={index: self._rows[index] for index in self._changed},
            placed=self._placed,
            ended=self._ended,
            statuses_read=statuses_read,
        )
        self._changed.clear()
        self._placed = []
        self._ended = []
