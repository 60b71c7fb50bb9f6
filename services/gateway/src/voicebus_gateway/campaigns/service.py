"""This replica's side of outbound campaigns: creating, reading and cancelling them, passing call
statuses on, running the campaigns it created, and resuming those whose replica went away."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from contextlib import suppress
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from voicebus_contracts.events import CallStatus
from voicebus_gateway.campaigns.models import (
    CampaignDetail,
    CampaignPlan,
    CampaignRequest,
    CampaignSummary,
    RowProgress,
    count_states,
)
from voicebus_gateway.campaigns.runner import CampaignRunner
from voicebus_gateway.campaigns.store import KEY_PREFIX, CampaignRecord, CampaignStore
from voicebus_gateway.ports import Dialer

log = logging.getLogger(__name__)

CAMPAIGN_TTL_S = 7 * 86_400
"""How long a campaign is kept after its last activity."""


class Campaigns:
    """Outbound campaigns, shared through Redis by every gateway replica.

    The replica that creates a campaign runs it, holding a lease in Redis that it extends at
    every step. If that replica stops cleanly it hands its campaigns back at once; if it dies,
    its lease lapses after `lease_s`. Either way every replica, once `start()`ed, looks for such
    orphans every poll interval and resumes them where Redis says they are: statuses that
    arrived meanwhile are waiting in the campaign's inbox, and a row caught `dialing` (the
    carrier may or may not have placed the call) ends `failed` rather than risk calling someone
    twice.
    """

    def __init__(
        self,
        redis: Redis,
        dialer: Dialer,
        *,
        poll_interval_s: float = 1.0,
        lease_s: float = 30.0,
        ttl_s: int = CAMPAIGN_TTL_S,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        if poll_interval_s <= 0 or lease_s < 3 * poll_interval_s:
            raise ValueError(
                f"need 0 < poll_interval_s and lease_s >= 3 poll intervals (a runner extends its"
                f" lease every step); got poll_interval_s={poll_interval_s}, lease_s={lease_s}"
            )
        self._store = CampaignStore(redis, key_prefix=key_prefix, ttl_s=ttl_s)
        self._dialer = dialer
        self._poll_interval_s = poll_interval_s
        self._lease_s = lease_s
        self._runner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        """This replica's name in campaign leases."""
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._adopter: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start resuming orphaned campaigns (the app's lifespan calls this)."""
        self._adopter = asyncio.create_task(self._adopt_orphans(), name="campaign-orphans")

    async def stop(self) -> None:
        """Let each runner finish its step and hand its campaign back to the other replicas."""
        self._stopping.set()
        await asyncio.gather(
            *(task for task in (self._adopter, *self._runners.values()) if task is not None)
        )

    async def create(self, request: CampaignRequest) -> CampaignSummary:
        """Store a campaign and start running it in this replica."""
        record = CampaignRecord(
            id=uuid.uuid4().hex,
            plan=CampaignPlan.model_validate(request.model_dump(exclude={"rows"})),
            state="running",
            created_at=datetime.now(UTC),
            rows=[RowProgress(to=row.to, variables=row.variables) for row in request.rows],
        )
        await self._store.create(record, runner=self._runner, lease_s=self._lease_s)
        log.info(
            "campaign %s created: %d rows, %d calls at a time, up to %d attempts %g s apart",
            record.id,
            len(record.rows),
            record.plan.concurrency,
            record.plan.max_attempts,
            record.plan.retry_delay_s,
        )
        self._run(record)
        return _summary(record)

    async def get(self, campaign_id: str) -> CampaignDetail | None:
        """The campaign with its rows; None if unknown (or expired)."""
        record = await self._store.load(campaign_id)
        if record is None:
            return None
        return CampaignDetail(**_summary(record).model_dump(), rows=record.rows)

    async def cancel(self, campaign_id: str) -> CampaignSummary | None:
        """Stop placing calls for a running campaign (calls in flight still report their
        outcome); the campaign as it is now, None if unknown. A finished campaign stays so."""
        record = await self._store.load(campaign_id)
        if record is None:
            return None
        state = await self._store.cancel(campaign_id)
        if state == "cancelled" and record.state == "running":
            log.info("campaign %s: cancel requested", campaign_id)
        summary = _summary(record)
        return summary.model_copy(update={"state": state or record.state})

    async def on_call_status(self, call_id: str, status: CallStatus) -> None:
        """Pass a carrier's call status on to the campaign that placed the call, whichever
        replica runs it; a call no campaign placed costs one Redis round trip."""
        await self._store.report(call_id, status)

    def _run(self, record: CampaignRecord) -> None:
        runner = CampaignRunner(
            record,
            store=self._store,
            dialer=self._dialer,
            runner=self._runner,
            poll_interval_s=self._poll_interval_s,
            lease_s=self._lease_s,
            stopping=self._stopping,
        )
        task = asyncio.create_task(runner.run(), name=f"campaign-{record.id}")
        self._runners[record.id] = task
        task.add_done_callback(lambda _: self._runners.pop(record.id, None))

    async def _adopt_orphans(self) -> None:
        while not self._stopping.is_set():
            try:
                for campaign_id in await self._store.active():
                    if campaign_id in self._runners or not await self._store.claim(
                        campaign_id, runner=self._runner, lease_s=self._lease_s
                    ):
                        continue
                    record = await self._store.load(campaign_id)
                    if record is not None:
                        log.info("campaign %s: resumed here, its runner went away", campaign_id)
                        self._run(record)
            except RedisError as exc:
                log.warning("campaigns: looking for orphaned campaigns failed: %s", exc)
            except Exception:
                log.exception("campaigns: looking for orphaned campaigns failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_interval_s)


def _summary(record: CampaignRecord) -> CampaignSummary:
    return CampaignSummary(
        id=record.id,
        state=record.state,
        created_at=record.created_at,
        counts=count_states(record.rows),
        **record.plan.model_dump(),
    )
