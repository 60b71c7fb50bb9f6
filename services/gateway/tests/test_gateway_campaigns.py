"""Outbound campaigns over real Redis, through their HTTP API, with a fake carrier that records
the calls placed and lets each test report their statuses as Twilio's callbacks would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from voicebus_contracts.events import TERMINAL_CALL_STATUSES, CallStatus
from voicebus_gateway.auth.access import Access
from voicebus_gateway.auth.limits import RateLimits
from voicebus_gateway.auth.redis_keys import RedisApiKeys
from voicebus_gateway.campaigns import Campaigns, campaign_routes
from voicebus_gateway.campaigns.runner import UNKNOWN_DIAL
from voicebus_gateway.campaigns.store import EARLY_TTL_S
from voicebus_gateway.ports import DialError, OutboundCall

POLL_S = 0.02
WAIT_S = 10.0
"""Longest a test waits for the campaign to get somewhere before it fails."""
Json = dict[str, Any]


class FakeCarrier:
    """A Dialer that hands out call ids, refuses the numbers in `refusals`, and counts the calls
    in flight (from the dial until the test reports a final status)."""

    def __init__(self, *, refusals: dict[str, str] | None = None) -> None:
        self.refusals = refusals or {}
        self.placed: list[tuple[str, OutboundCall]] = []
        self.in_flight: list[str] = []
        self.max_in_flight = 0
        self.hold: asyncio.Event | None = None
        """If set, dials wait for it: a carrier that is slow to answer."""
        self.before_answer: Callable[[str], Awaitable[None]] | None = None
        """Run with the call id before the dial returns: a status callback overtaking the answer."""
        self._new_call = asyncio.Condition()

    async def dial(self, call: OutboundCall) -> str:
        call_id = f"CA{uuid.uuid4().hex}"
        self.in_flight.append(call_id)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        if self.hold is not None:
            await self.hold.wait()
        if call.to in self.refusals:
            self.in_flight.remove(call_id)
            raise DialError(self.refusals[call.to])
        if self.before_answer is not None:
            await self.before_answer(call_id)
        async with self._new_call:
            self.placed.append((call_id, call))
            self._new_call.notify_all()
        return call_id

    async def call(self, n: int) -> str:
        """The id of the n-th call placed (from 1), once it is placed."""
        async with asyncio.timeout(WAIT_S), self._new_call:
            await self._new_call.wait_for(lambda: len(self.placed) >= n)
        return self.placed[n - 1][0]


@dataclass
class Replica:
    """One gateway replica's campaigns, served over HTTP."""

    campaigns: Campaigns
    carrier: FakeCarrier
    http: httpx.AsyncClient
    redis: Redis

    async def report(self, call_id: str, *statuses: CallStatus) -> None:
        """Twilio's status callbacks for `call_id`, as they reach this replica."""
        for status in statuses:
            if status in TERMINAL_CALL_STATUSES and call_id in self.carrier.in_flight:
                self.carrier.in_flight.remove(call_id)
            await self.campaigns.on_call_status(call_id, status)

    async def create(self, **body: Any) -> Json:
        response = await self.http.post("/api/campaigns", json=body)
        assert response.status_code == 201, response.text
        created: Json = response.json()
        return created

    async def campaign(self, campaign_id: str) -> Json:
        response = await self.http.get(f"/api/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        campaign: Json = response.json()
        return campaign

    async def until(self, campaign_id: str, condition: Callable[[Json], bool]) -> Json:
        """The campaign once `condition` holds for it."""
        campaign = await self.campaign(campaign_id)
        try:
            async with asyncio.timeout(WAIT_S):
                while not condition(campaign):
                    await asyncio.sleep(POLL_S)
                    campaign = await self.campaign(campaign_id)
        except TimeoutError:
            raise AssertionError(f"campaign never got there; it is: {campaign}") from None
        return campaign


ReplicaFactory = Callable[..., Awaitable[Replica]]


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"voicebus:campaign:test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


@pytest.fixture
async def start_replica(redis_url: str, prefix: str) -> AsyncIterator[ReplicaFactory]:
    """Starts gateway replicas sharing one Redis; stops those still running at the end."""
    started: list[Replica] = []

    async def start(carrier: FakeCarrier | None = None, *, lease_s: float = 5.0) -> Replica:
        redis = Redis.from_url(redis_url)
        carrier = carrier or FakeCarrier()
        campaigns = Campaigns(
            redis, carrier, poll_interval_s=POLL_S, lease_s=lease_s, key_prefix=prefix
        )
        app = FastAPI()
        # Open, as a gateway only this machine reaches is.
        app.state.access = Access(
            keys=RedisApiKeys(redis),
            limits=RateLimits(redis, per_minute=600),
            keys_required=False,
        )
        app.include_router(campaign_routes(campaigns))
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gateway")
        await campaigns.start()
        started.append(Replica(campaigns, carrier, http, redis))
        return started[-1]

    yield start
    for replica in started:
        if replica.carrier.hold is not None:
            replica.carrier.hold.set()
        await replica.campaigns.stop()
        await replica.http.aclose()
        await replica.redis.aclose()


@asynccontextmanager
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


def rows(*numbers: str) -> list[Json]:
    return [{"to": number, "variables": {"row": str(i)}} for i, number in enumerate(numbers)]


def outcomes(row: Json) -> list[str | None]:
    return [attempt["outcome"] for attempt in row["attempts"]]


def over(campaign: Json) -> bool:
    return bool(campaign["state"] != "running")


async def test_never_more_calls_in_flight_than_the_concurrency(
    start_replica: ReplicaFactory, prefix: str, redis_url: str
) -> None:
    gateway = await start_replica()
    numbers = [f"+1415555{i:04d}" for i in range(7)]
    created = await gateway.create(
        agent_id="sales", **{"from": "+14155550100"}, rows=rows(*numbers), concurrency=3
    )
    assert created["state"] == "running"
    assert created["counts"]["pending"] == 7

    # End a call only once the campaign has filled every slot it may, so an excess would show.
    for n in range(1, 8):
        await gateway.carrier.call(n)
        if n >= 3:
            await gateway.report(gateway.carrier.placed[n - 3][0], "completed")
    for call_id, _ in gateway.carrier.placed[-2:]:
        await gateway.report(call_id, "completed")

    campaign = await gateway.until(created["id"], over)
    assert campaign["state"] == "finished"
    assert gateway.carrier.max_in_flight == 3
    assert campaign["counts"]["completed"] == 7
    assert [row["to"] for row in campaign["rows"]] == numbers
    assert [call.to for _, call in gateway.carrier.placed] == numbers
    placed = [call for _, call in gateway.carrier.placed]
    assert {(call.agent_id, call.from_number) for call in placed} == {("sales", "+14155550100")}
    assert [call.variables for call in placed] == [{"row": str(i)} for i in range(7)]
    assert [row["attempts"][0]["call_id"] for row in campaign["rows"]] == [
        call_id for call_id, _ in gateway.carrier.placed
    ]
    async with redis_client(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        assert keys
        assert all([await redis.ttl(key) > 0 for key in keys]), "every campaign key expires"


async def test_a_row_follows_its_call_and_ignores_statuses_out_of_order(
    start_replica: ReplicaFactory,
) -> None:
    gateway = await start_replica()
    created = await gateway.create(rows=rows("+14155550101"))
    call_id = await gateway.carrier.call(1)

    await gateway.report(call_id, "ringing")
    await gateway.until(created["id"], lambda c: c["rows"][0]["state"] == "ringing")
    await gateway.report(call_id, "in-progress", "ringing")
    campaign = await gateway.until(created["id"], lambda c: c["counts"]["in-progress"] == 1)
    (attempt,) = campaign["rows"][0]["attempts"]
    assert (attempt["call_id"], attempt["outcome"]) == (call_id, None)

    await gateway.report(call_id, "completed", "in-progress")
    campaign = await gateway.until(created["id"], over)
    assert campaign["rows"][0]["state"] == "completed"


async def test_a_busy_number_is_tried_again_until_it_answers(
    start_replica: ReplicaFactory,
) -> None:
    gateway = await start_replica()
    created = await gateway.create(rows=rows("+14155550102"), max_attempts=3, retry_delay_s=0.01)
    await gateway.report(await gateway.carrier.call(1), "ringing", "busy")
    await gateway.report(await gateway.carrier.call(2), "ringing", "no-answer")
    await gateway.report(await gateway.carrier.call(3), "in-progress", "completed")

    campaign = await gateway.until(created["id"], over)
    assert campaign["state"] == "finished"
    (row,) = campaign["rows"]
    assert row["state"] == "completed"
    assert outcomes(row) == ["busy", "no-answer", "completed"]
    assert [a["call_id"] for a in row["attempts"]] == [c for c, _ in gateway.carrier.placed]
    assert [call.to for _, call in gateway.carrier.placed] == ["+14155550102"] * 3


async def test_a_number_busy_at_every_attempt_ends_busy(start_replica: ReplicaFactory) -> None:
    gateway = await start_replica()
    created = await gateway.create(rows=rows("+14155550103"), max_attempts=2, retry_delay_s=0.01)
    await gateway.report(await gateway.carrier.call(1), "busy")
    await gateway.report(await gateway.carrier.call(2), "busy")

    campaign = await gateway.until(created["id"], over)
    assert campaign["state"] == "finished"
    assert campaign["rows"][0]["state"] == "busy"
    assert outcomes(campaign["rows"][0]) == ["busy", "busy"]
    assert len(gateway.carrier.placed) == 2
    cancelled = await gateway.http.post(f"/api/campaigns/{created['id']}/cancel")
    assert cancelled.status_code == 409
    assert "already finished" in cancelled.json()["detail"]


async def test_failed_calls_and_carrier_refusals_are_final(start_replica: ReplicaFactory) -> None:
    refusal = "Twilio refused the call to +14155550104: the number is unverified"
    gateway = await start_replica(FakeCarrier(refusals={"+14155550104": refusal}))
    created = await gateway.create(
        rows=rows("+14155550104", "+14155550105"), max_attempts=3, retry_delay_s=0.01
    )
    await gateway.report(await gateway.carrier.call(1), "failed")

    campaign = await gateway.until(created["id"], over)
    refused, failed = campaign["rows"]
    assert refused["state"] == "failed"
    assert refused["last_error"] == refusal
    (attempt,) = refused["attempts"]
    assert (attempt["call_id"], attempt["outcome"], attempt["error"]) == (None, "failed", refusal)
    assert failed["state"] == "failed"
    assert outcomes(failed) == ["failed"]
    assert failed["last_error"] is None
    assert campaign["counts"]["failed"] == 2
    assert len(gateway.carrier.placed) == 1


async def test_cancel_places_no_more_calls_and_keeps_following_live_ones(
    start_replica: ReplicaFactory,
) -> None:
    gateway = await start_replica()
    created = await gateway.create(
        rows=rows("+14155550106", "+14155550107", "+14155550108"),
        concurrency=1,
        retry_delay_s=3600,
    )
    await gateway.report(await gateway.carrier.call(1), "busy")
    second = await gateway.carrier.call(2)
    waiting = await gateway.until(created["id"], lambda c: c["counts"]["retry-wait"] == 1)
    assert waiting["rows"][0]["retry_at"] is not None

    response = await gateway.http.post(f"/api/campaigns/{created['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    # Once the runner has seen the cancel, the waiting row keeps its outcome...
    await gateway.until(created["id"], lambda c: c["rows"][0]["state"] == "busy")
    # ...and a call ending now is not tried again either.
    await gateway.report(second, "no-answer")

    campaign = await gateway.until(created["id"], lambda c: c["counts"]["no-answer"] == 1)
    assert campaign["state"] == "cancelled"
    assert [row["state"] for row in campaign["rows"]] == ["busy", "no-answer", "pending"]
    assert campaign["rows"][0]["retry_at"] is None
    assert len(gateway.carrier.placed) == 2
    again = await gateway.http.post(f"/api/campaigns/{created['id']}/cancel")
    assert again.status_code == 200
    assert again.json()["state"] == "cancelled"


async def test_statuses_reach_the_campaign_through_any_replica_and_another_resumes_it(
    start_replica: ReplicaFactory,
) -> None:
    first = await start_replica()
    second = await start_replica()
    created = await first.create(rows=rows("+14155550109", "+14155550110"), concurrency=1)
    call_id = await first.carrier.call(1)
    await second.report(call_id, "in-progress")
    await second.until(created["id"], lambda c: c["rows"][0]["state"] == "in-progress")

    await first.campaigns.stop()  # the replica running the campaign goes away
    await second.report(call_id, "completed")
    await second.report(await second.carrier.call(1), "completed")

    campaign = await second.until(created["id"], over)
    assert campaign["state"] == "finished"
    assert campaign["counts"]["completed"] == 2
    assert len(first.carrier.placed) == 1


async def test_a_campaign_cancelled_while_no_replica_runs_it_is_resumed_cancelled(
    start_replica: ReplicaFactory,
) -> None:
    first = await start_replica()
    created = await first.create(
        rows=rows("+14155550115", "+14155550116", "+14155550117"),
        concurrency=1,
        retry_delay_s=3600,
    )
    await first.report(await first.carrier.call(1), "busy")
    second_call = await first.carrier.call(2)
    await first.campaigns.stop()
    response = await first.http.post(f"/api/campaigns/{created['id']}/cancel")
    assert response.json()["state"] == "cancelled"

    second = await start_replica()
    await second.report(second_call, "completed")
    campaign = await second.until(created["id"], lambda c: c["counts"]["completed"] == 1)
    assert [row["state"] for row in campaign["rows"]] == ["busy", "completed", "pending"]
    assert second.carrier.placed == []


async def test_a_replica_stalled_mid_dial_loses_the_campaign_without_a_second_call(
    start_replica: ReplicaFactory,
) -> None:
    stalled = FakeCarrier()
    stalled.hold = asyncio.Event()
    first = await start_replica(stalled, lease_s=0.5)
    second = await start_replica(lease_s=0.5)
    created = await first.create(rows=rows("+14155550111", "+14155550112"), concurrency=1)

    # The first replica's lease lapses while its carrier hangs: the second takes over.
    await second.report(await second.carrier.call(1), "completed")
    campaign = await second.until(created["id"], over)
    assert [row["state"] for row in campaign["rows"]] == ["failed", "completed"]
    assert campaign["rows"][0]["last_error"] == UNKNOWN_DIAL
    assert [call.to for _, call in second.carrier.placed] == ["+14155550112"]

    stalled.hold.set()  # the stalled dial returns; its late result must not overwrite anything
    await first.campaigns.stop()
    assert await second.campaign(created["id"]) == campaign


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ({"rows": [{"to": "555-0100"}]}, ["body", "rows", 0, "to"], "is not an E.164 phone number"),
        ({"rows": []}, ["body", "rows"], "at least 1 item"),
        ({"rows": rows("+14155550113") * 10_001}, ["body", "rows"], "at most 10000 items"),
        ({"rows": rows("+14155550113"), "concurrency": 0}, ["body", "concurrency"], ">= 1"),
        ({"rows": rows("+14155550113"), "max_attempts": 11}, ["body", "max_attempts"], "<= 10"),
        (
            {"rows": rows("+14155550113"), "from": "0100"},
            ["body", "from"],
            "is not an E.164 phone number",
        ),
        ({"rows": rows("+14155550113"), "retries": 2}, ["body", "retries"], "not permitted"),
    ],
)
async def test_invalid_campaigns_are_refused_with_what_is_wrong(
    start_replica: ReplicaFactory, body: Json, where: list[object], message: str
) -> None:
    gateway = await start_replica()
    response = await gateway.http.post("/api/campaigns", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == where
    assert message in error["msg"].replace("greater than or equal to", ">=").replace(
        "less than or equal to", "<="
    )
    assert gateway.carrier.placed == []


@pytest.mark.parametrize("campaign_id", [uuid.uuid4().hex, "active", "not-a-campaign"])
async def test_an_unknown_campaign_is_not_found(
    start_replica: ReplicaFactory, campaign_id: str
) -> None:
    gateway = await start_replica()
    for response in (
        await gateway.http.get(f"/api/campaigns/{campaign_id}"),
        await gateway.http.post(f"/api/campaigns/{campaign_id}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json()["detail"].startswith(f"no campaign {campaign_id!r}")


async def test_a_status_overtaking_the_carriers_answer_is_not_lost(
    start_replica: ReplicaFactory,
) -> None:
    gateway = await start_replica()

    async def report_at_once(call_id: str) -> None:
        await gateway.report(call_id, "initiated", "no-answer")

    gateway.carrier.before_answer = report_at_once
    created = await gateway.create(rows=rows("+14155550114"), max_attempts=1)

    campaign = await gateway.until(created["id"], over)
    assert campaign["rows"][0]["state"] == "no-answer"


async def test_a_status_of_a_call_no_campaign_placed_leaves_only_an_expiring_key(
    start_replica: ReplicaFactory, prefix: str, redis_url: str
) -> None:
    gateway = await start_replica()
    await gateway.report("CAnot-a-campaign-call", "completed")
    async with redis_client(redis_url) as redis:
        (key,) = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        assert key.decode() == f"{prefix}call:CAnot-a-campaign-call:early"
        assert 0 < await redis.ttl(key) <= EARLY_TTL_S
