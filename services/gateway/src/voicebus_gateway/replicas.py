"""Gateway replicas that die: their calls are ended by the replicas still alive.

Each replica holds a lease in Redis, renewed well before it lapses. Every replica sweeps: a
replica known to hold calls whose lease has lapsed is dead, and one sweeper (the first to claim
it) announces the end of each of its calls and drops their routes, so the workers and the record
do not wait forever on a caller nobody hears. A replica restarting under the same id finds its
previous life's calls the same way, before it takes calls again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from voicebus_contracts import CallEnded, envelope
from voicebus_contracts.topics import CALLS
from voicebus_gateway.switchboard import SERVICE
from voicebus_runtime.bus import publish
from voicebus_runtime.registry import CallRegistry

log = logging.getLogger(__name__)

REPLICAS_KEY = "voicebus:gateways"
LOST_REASON = "gateway replica lost"


def _lease_key(gateway_id: str) -> str:
    return f"voicebus:gateway:{gateway_id}:lease"


def _sweep_key(gateway_id: str) -> str:
    return f"voicebus:gateway:{gateway_id}:sweep"


class ReplicaLease:
    """This replica's lease, and the sweep for the calls of replicas whose lease lapsed."""

    def __init__(
        self,
        *,
        gateway_id: str,
        redis: Redis,
        registry: CallRegistry,
        broker: KafkaBroker,
        lease_s: float,
    ) -> None:
        self._gateway_id = gateway_id
        self._redis = redis
        self._registry = registry
        self._broker = broker
        self._lease_ms = max(1, int(lease_s * 1000))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """End calls left from this replica's previous life, then hold the lease."""
        await self._end_calls_of(self._gateway_id)
        await self._renew()
        await self._redis.sadd(REPLICAS_KEY, self._gateway_id)
        self._task = asyncio.create_task(self._keep(), name="replica-lease")

    async def stop(self) -> None:
        """Give the lease up: a replica that stopped cleanly has ended its calls, so nobody has
        to sweep it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.delete(_lease_key(self._gateway_id))
        await self._redis.srem(REPLICAS_KEY, self._gateway_id)

    async def sweep(self) -> list[str]:
        """End the calls of every replica whose lease lapsed; the replicas swept."""
        swept: list[str] = []
        members = await self._redis.smembers(REPLICAS_KEY)
        for member in members:
            gateway_id = member.decode() if isinstance(member, bytes) else str(member)
            if gateway_id == self._gateway_id or await self._redis.exists(_lease_key(gateway_id)):
                continue
            claimed = await self._redis.set(
                _sweep_key(gateway_id), self._gateway_id, nx=True, px=self._lease_ms
            )
            if not claimed:
                continue  # another replica is sweeping it
            log.warning("gateway replica %s lost its lease: ending its calls", gateway_id)
            await self._end_calls_of(gateway_id)
            await self._redis.srem(REPLICAS_KEY, gateway_id)
            swept.append(gateway_id)
        return swept

    async def _end_calls_of(self, gateway_id: str) -> None:
        for call_id in await self._registry.calls_on(gateway_id):
            ended = envelope(CallEnded(reason=LOST_REASON), call_id=call_id, producer=SERVICE)
            await publish(self._broker, CALLS, ended)
            await self._registry.forget(call_id, gateway_id=gateway_id)
            log.info("call %s: ended (%s %s)", call_id, LOST_REASON, gateway_id)

    async def _renew(self) -> None:
        await self._redis.set(_lease_key(self._gateway_id), "alive", px=self._lease_ms)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                await self._renew()
                await self.sweep()
            except Exception:
                log.warning("replica lease not renewed; retrying", exc_info=True)
