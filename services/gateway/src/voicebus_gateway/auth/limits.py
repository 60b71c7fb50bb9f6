"""Per-key rate limits: a token bucket per key in Redis, so a key's limit holds across every
gateway replica (counted in each process, N replicas would let N times the limit through).

The bucket holds up to a minute's allowance and refills continuously; each request takes one
token, or is told how long until there is one. One script does it atomically, on Redis' clock,
so replicas whose clocks disagree still share one bucket fairly.
"""

from __future__ import annotations

from redis.asyncio import Redis

BUCKET_PREFIX = "voicebus:rate:"

_TAKE = """
local capacity = tonumber(ARGV[1])
local per_s = capacity / 60
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(kept[1]) or capacity
local at = tonumber(kept[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_s)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / per_s
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 61)
return tostring(wait)
"""
"""Returns the seconds to wait, as text (Redis would truncate a Lua number to an integer); 0
when a token was taken. A bucket left alone for a minute is full: it expires."""


class RateLimits:
    """`per_minute` requests a minute for each bucket (an API key's id), bursts included."""

    def __init__(self, redis: Redis, *, per_minute: int) -> None:
        self._take = redis.register_script(_TAKE)
        self._per_minute = per_minute

    async def take(self, bucket: str) -> float | None:
        """None if the request may go; else the seconds until it may."""
        wait = float(await self._take(keys=[BUCKET_PREFIX + bucket], args=[self._per_minute]))
        return wait if wait > 0 else None
