"""Campaigns in Redis, shared by every gateway replica.

Keys (prefix `voicebus:campaign:`), each kept `ttl_s` after the campaign's last activity:

- `<id>`: hash of the plan, the state and the creation time;
- `<id>:rows`: hash of row index -> the row's progress (JSON); only the campaign's runner writes it;
- `<id>:inbox`: list of call statuses reported by any replica, drained by the runner;
- `<id>:runner`: the lease of the replica running the campaign (a token, expiring);
- `active`: set of campaigns with a runner's work left, where replicas look for orphans;
- `call:<call id>`: the campaign a live call belongs to, so a status finds its campaign in one read;
- `call:<call id>:early`: statuses of a call no campaign has claimed (yet), kept `EARLY_TTL_S`.

A carrier may report a call's status before the runner that placed it has recorded the call id
(it learns the id only when the dial returns). Such a status waits under `early`, and recording the
call moves it into the campaign's inbox in the same script, so no status falls into the gap. A
call no campaign placed costs one script run and leaves a key that expires on its own.

The runner's writes for one step go in one MULTI, so what Redis holds is always a consistent
picture a replica resuming the campaign can start from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from voicebus_contracts.events import CallStatus
from voicebus_gateway.campaigns.models import CampaignPlan, CampaignState, RowProgress

KEY_PREFIX = "voicebus:campaign:"
EARLY_TTL_S = 300
"""How long a status waits for its call to be recorded: longer than any dial takes."""
INBOX_BATCH = 1_000
"""Most call statuses one runner step takes from its inbox."""

_CAMPAIGN_ID = re.compile(r"^[0-9a-f]{32}$")

# Extend the lease only while it is ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# A campaign whose keys expired leaves the active set instead of being claimed.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[3])
  return 0
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""
# The campaign a call belongs to, or keep its status for when the call is recorded.
_REPORT = """
local campaign = redis.call('GET', KEYS[1])
if campaign then
  return campaign
end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return false
"""
# Record a placed call (ARGV[3]) for its campaign (ARGV[1]); statuses already reported move to
# the campaign's inbox.
_PLACE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for _, status in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  redis.call('RPUSH', KEYS[3], cjson.encode({ARGV[3], status}))
end
redis.call('DEL', KEYS[2])
"""
# Move the campaign from `running` to ARGV[1]; answer the state it is in afterwards.
_LEAVE_RUNNING = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
  return ARGV[1]
end
return state
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class LeaseLostError(Exception):
    """Another replica has taken the campaign over; this runner must stop."""


@dataclass(frozen=True)
class CampaignRecord:
    """A campaign as Redis holds it."""

    id: str
    plan: CampaignPlan
    state: CampaignState
    created_at: datetime
    rows: list[RowProgress]


@dataclass(frozen=True)
class Poll:
    """What a runner step starts from: new call statuses, the campaign's state, the lease."""

    statuses: list[tuple[str, CallStatus]]
    state: CampaignState | None
    """None: the campaign's keys are gone."""
    lease_held: bool


class CampaignStore:
    """The campaign keys in Redis (see the module docstring)."""

    def __init__(self, redis: Redis, *, key_prefix: str = KEY_PREFIX, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._ttl_s = ttl_s
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._claim = redis.register_script(_CLAIM)
        self._leave_running = redis.register_script(_LEAVE_RUNNING)
        self._report = redis.register_script(_REPORT)
        self._place = redis.register_script(_PLACE)

    def _meta(self, campaign_id: str) -> str:
        return f"{self._prefix}{campaign_id}"

    def _rows(self, campaign_id: str) -> str:
        return f"{self._prefix}{campaign_id}:rows"

    def _inbox(self, campaign_id: str) -> str:
        return f"{self._prefix}{campaign_id}:inbox"

    def _lease(self, campaign_id: str) -> str:
        return f"{self._prefix}{campaign_id}:runner"

    def _call(self, call_id: str) -> str:
        return f"{self._prefix}call:{call_id}"

    def _early(self, call_id: str) -> str:
        return f"{self._prefix}call:{call_id}:early"

    @property
    def _active(self) -> str:
        return f"{self._prefix}active"

    async def create(self, record: CampaignRecord, *, runner: str, lease_s: float) -> None:
        """Store a new campaign, already leased to `runner`, so no other replica claims it."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._meta(record.id),
                mapping={
                    "plan": record.plan.model_dump_json(),
                    "state": record.state,
                    "created_at": record.created_at.isoformat(),
                },
            )
            pipe.hset(
                self._rows(record.id),
                mapping={str(i): row.model_dump_json() for i, row in enumerate(record.rows)},
            )
            pipe.set(self._lease(record.id), runner, px=round(lease_s * 1000))
            pipe.sadd(self._active, record.id)
            self._keep(pipe, record.id)
            await pipe.execute()

    async def load(self, campaign_id: str) -> CampaignRecord | None:
        """The campaign, or None if the id is unknown (or its keys expired)."""
        if not _CAMPAIGN_ID.fullmatch(campaign_id):
            return None
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._meta(campaign_id))
            pipe.hgetall(self._rows(campaign_id))
            meta_raw, rows_raw = await pipe.execute()
        if not meta_raw:
            return None
        meta = {_text(k): _text(v) for k, v in meta_raw.items()}
        rows = sorted((int(k), RowProgress.model_validate_json(v)) for k, v in rows_raw.items())
        return CampaignRecord(
            id=campaign_id,
            plan=CampaignPlan.model_validate_json(meta["plan"]),
            state=cast(CampaignState, meta["state"]),
            created_at=datetime.fromisoformat(meta["created_at"]),
            rows=[row for _, row in rows],
        )

    async def cancel(self, campaign_id: str) -> CampaignState | None:
        """Mark a running campaign cancelled (its runner stops placing calls at its next step);
        the campaign's state afterwards, None if its keys are gone."""
        state = await self._leave_running(keys=[self._meta(campaign_id)], args=["cancelled"])
        return None if state is None else cast(CampaignState, _text(state))

    async def report(self, call_id: str, status: CallStatus) -> None:
        """Queue a call's status for the runner of the campaign that placed it, wherever that
        runs; a status of a call not recorded (yet) waits under `early`."""
        campaign_id = await self._report(
            keys=[self._call(call_id), self._early(call_id)], args=[status, EARLY_TTL_S]
        )
        if campaign_id is None:
            return
        inbox = self._inbox(_text(campaign_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(inbox, json.dumps([call_id, status]))
            pipe.expire(inbox, self._ttl_s)
            await pipe.execute()

    async def poll(self, campaign_id: str, *, runner: str, lease_s: float) -> Poll:
        """New statuses and the campaign's state; extends `runner`'s lease if it still holds it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(self._inbox(campaign_id), 0, INBOX_BATCH - 1)
            pipe.hget(self._meta(campaign_id), "state")
            await self._renew(
                keys=[self._lease(campaign_id)],
                args=[runner, round(lease_s * 1000)],
                client=pipe,
            )
            inbox, state, renewed = await pipe.execute()
        statuses = [cast(tuple[str, CallStatus], tuple(json.loads(item))) for item in inbox]
        return Poll(
            statuses=statuses,
            state=None if state is None else cast(CampaignState, _text(state)),
            lease_held=bool(renewed),
        )

    async def save(
        self,
        campaign_id: str,
        *,
        runner: str,
        rows: dict[int, RowProgress],
        placed: list[str],
        ended: list[str],
        statuses_read: int,
    ) -> None:
        """One runner step's effects, all or nothing: changed rows, calls placed (so their
        statuses find the campaign) and ended, and the statuses it has applied.

        Raises LeaseLostError, writing nothing, if `runner` no longer holds the campaign.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            await self._hold(pipe, campaign_id, runner)
            if rows:
                pipe.hset(
                    self._rows(campaign_id),
                    mapping={str(i): row.model_dump_json() for i, row in rows.items()},
                )
            for call_id in placed:
                await self._place(
                    keys=[self._call(call_id), self._early(call_id), self._inbox(campaign_id)],
                    args=[campaign_id, self._ttl_s, call_id],
                    client=pipe,
                )
            if ended:
                pipe.delete(*(self._call(call_id) for call_id in ended))
            if statuses_read:
                pipe.ltrim(self._inbox(campaign_id), statuses_read, -1)
            self._keep(pipe, campaign_id)
            await self._commit(pipe, campaign_id)

    async def finish(self, campaign_id: str, *, runner: str) -> CampaignState | None:
        """The runner's work is over: a running campaign becomes finished, the lease is
        released; the campaign's final state (None if its keys are gone).

        Raises LeaseLostError, writing nothing, if `runner` no longer holds the campaign.
        """
        async with self._redis.pipeline(transaction=True) as pipe:
            await self._hold(pipe, campaign_id, runner)
            await self._leave_running(
                keys=[self._meta(campaign_id)], args=["finished"], client=pipe
            )
            pipe.srem(self._active, campaign_id)
            pipe.delete(self._lease(campaign_id))
            state, *_ = await self._commit(pipe, campaign_id)
        return None if state is None else cast(CampaignState, _text(state))

    async def active(self) -> list[str]:
        """Campaigns with a runner's work left, whichever replica runs them."""
        return [_text(member) for member in await self._redis.smembers(self._active)]

    async def claim(self, campaign_id: str, *, runner: str, lease_s: float) -> bool:
        """Take over a campaign whose runner's lease has lapsed."""
        claimed = await self._claim(
            keys=[self._meta(campaign_id), self._lease(campaign_id), self._active],
            args=[runner, round(lease_s * 1000), campaign_id],
        )
        return bool(claimed)

    async def release(self, campaign_id: str, *, runner: str) -> None:
        """Hand a campaign back, so another replica resumes it without waiting for the lease."""
        await self._release(keys=[self._lease(campaign_id)], args=[runner])

    async def _hold(self, pipe: Pipeline, campaign_id: str, runner: str) -> None:
        """Open a MULTI on `pipe` that commits only while `runner` holds the campaign's lease, so
        a runner that stalled past its lease cannot overwrite the replica that took over."""
        await pipe.watch(self._lease(campaign_id))
        holder = await pipe.get(self._lease(campaign_id))
        if holder is None or _text(holder) != runner:
            raise LeaseLostError(campaign_id)
        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    async def _commit(self, pipe: Pipeline, campaign_id: str) -> list[Any]:
        try:
            return await pipe.execute()
        except WatchError as exc:
            raise LeaseLostError(campaign_id) from exc

    def _keep(self, pipe: Pipeline, campaign_id: str) -> None:
        """Push back the campaign's expiry: it is kept `ttl_s` after its last activity."""
        for key in (
            self._meta(campaign_id),
            self._rows(campaign_id),
            self._inbox(campaign_id),
            self._active,
        ):
            pipe.expire(key, self._ttl_s)
