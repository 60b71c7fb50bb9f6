"""At-least-once delivery made effectively-once: act on an event id only the first time."""

from __future__ import annotations

from uuid import UUID

from redis.asyncio import Redis

SEEN_TTL_S = 24 * 3600


class SeenEvents:
    """Remembers handled event ids per consumer group in Redis for a day."""

    def __init__(self, redis: Redis, *, group: str) -> None:
        self._redis = redis
        self._group = group

    async def first_time(self, event_id: UUID) -> bool:
        """True the first time `event_id` is offered to this group, False on redelivery."""
        key = f"voicebus:seen:{self._group}:{event_id}"
        return bool(await self._redis.set(key, b"1", nx=True, ex=SEEN_TTL_S))
