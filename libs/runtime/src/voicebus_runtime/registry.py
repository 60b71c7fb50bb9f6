"""The call registry in Redis: which gateway replica holds a call's socket, and its audio format."""

from __future__ import annotations

from redis.asyncio import Redis

from voicebus_contracts import CallRoute

ROUTE_TTL_S = 6 * 3600
"""A route outlives any sane call; removed at call end, the TTL only cleans up after crashes."""


def _key(call_id: str) -> str:
    return f"voicebus:call:{call_id}:route"


class CallRegistry:
    """Redis-backed routes of live calls."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def register(self, route: CallRoute) -> None:
        await self._redis.set(_key(route.call_id), route.model_dump_json(), ex=ROUTE_TTL_S)

    async def lookup(self, call_id: str) -> CallRoute | None:
        raw = await self._redis.get(_key(call_id))
        return None if raw is None else CallRoute.model_validate_json(raw)

    async def forget(self, call_id: str) -> None:
        await self._redis.delete(_key(call_id))
