"""The services' Redis client: one that rides out Redis restarting or failing over.

redis-py gives up on a command at the first broken connection; a restart of Redis (a rollout,
a failover to a replica) would then fail whatever call was handled at that moment. This client
tries again on a new connection, waiting a little longer each time, for a few seconds in all.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 8
"""Waits of 0.05, 0.1, 0.2, 0.4, 0.8 and then 1 s: about 5 s for Redis to be back."""


def connect(url: str, *, max_connections: int | None = None, wait_s: float | None = None) -> Redis:
    """A client of the Redis at `url`; with `max_connections`, at most that many connections,
    a command waiting up to `wait_s` for one to be free."""
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), RETRIES)
    on = [RedisConnectionError, RedisTimeoutError]
    if max_connections is None:
        return Redis.from_url(url, retry=retry, retry_on_error=on)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_s, retry=retry, retry_on_error=on
    )
    return Redis(connection_pool=pool)
