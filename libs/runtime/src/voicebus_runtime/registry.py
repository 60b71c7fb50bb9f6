"""The call registry in Redis: which gateway replica holds a live call, and its audio format.

Each route is also indexed under its gateway replica, so when a replica dies the calls it held
can be found and ended by another.
"""

from __future__ import annotations

from redis.asyncio import Redis

from voicebus_contracts import CallRoute

ROUTE_TTL_S = 6 * 3600
"""A route outlives any sane call; removed at call end, the TTL only cleans up after crashes."""


def _route_key(call_id: str) -> str:
    return f"voicebus:call:{call_id}:route"


def _calls_key(gateway_id: str) -> str:
    return f"voicebus:gateway:{gateway_id}:calls"


class CallRegistry:
    """Redis-backed routes of live calls."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def register(self, route: CallRoute) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_route_key(route.call_id), route.model_dump_json(), ex=ROUTE_TTL_S)
            pipe.sadd(_calls_key(route.gateway_id), route.call_id)
            pipe.expire(_calls_key(route.gateway_id), ROUTE_TTL_S)
            await pipe.execute()

    async def lookup(self, call_id: str) -> CallRoute | None:
        raw = await self._redis.get(_route_key(call_id))
        return None if raw is None else CallRoute.model_validate_json(raw)

    async def calls_on(self, gateway_id: str) -> set[str]:
        """The ids of the calls registered as held by gateway replica `gateway_id`."""
        members = await self._redis.smembers(_calls_key(gateway_id))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def forget(self, call_id: str, *, gateway_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(_route_key(call_id))
            pipe.srem(_calls_key(gateway_id), call_id)
            await pipe.execute()
