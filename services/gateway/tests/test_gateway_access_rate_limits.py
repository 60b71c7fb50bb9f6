"""Per-key rate limits: a token bucket per key in real Redis, shared by every replica; a key
over its limit gets 429 with Retry-After, and other keys are not held back by it."""

from __future__ import annotations

import uuid

import httpx
import pytest
from redis.asyncio import Redis

from voicebus_gateway.auth.limits import RateLimits
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.settings import GatewaySettings

from .conftest import Keys, Running, bearer, gateway_settings

PER_MINUTE = 5
"""A token every 12 s: nothing this test does waits that long between two requests."""
MAX_REQUESTS = 4 * PER_MINUTE
"""Guards against a limit that never comes."""


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    return gateway_settings(analytics_url, auth="required", rate_limit_per_minute=PER_MINUTE)


async def test_a_bucket_lets_a_minutes_allowance_through_then_says_how_long_to_wait(
    redis_url: str,
) -> None:
    redis = Redis.from_url(redis_url)
    replicas = [RateLimits(redis, per_minute=3), RateLimits(redis, per_minute=3)]
    bucket, other = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    taken = [await replicas[n % 2].take(bucket) for n in range(3)]  # one bucket, two replicas
    wait = await replicas[0].take(bucket)
    assert await replicas[1].take(other) is None
    await redis.aclose()
    assert taken == [None, None, None]
    assert wait is not None
    assert 0 < wait <= 60 / 3


async def test_a_key_over_its_limit_gets_429_and_others_go_on(
    running: Running, api_keys: Keys
) -> None:
    busy, quiet = await api_keys.key(Scope.CALLS_READ), await api_keys.key(Scope.ADMIN)
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        answers = []
        for _ in range(MAX_REQUESTS):
            answers.append(await client.get("/api/calls", headers=bearer(busy)))
            if answers[-1].status_code == 429:
                break
        other = await client.get("/api/calls", headers=bearer(quiet))
    statuses = [answer.status_code for answer in answers]
    assert statuses[:PER_MINUTE] == [200] * PER_MINUTE
    assert statuses[-1] == 429, statuses
    limited = answers[-1]
    assert 1 <= int(limited.headers["retry-after"]) <= 60 // PER_MINUTE
    assert "over its rate limit" in limited.json()["detail"]
    assert other.status_code == 200
