"""Fixtures the agent's tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the tests' Redis (see the root conftest), closed afterwards."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
