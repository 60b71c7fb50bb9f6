"""Liveness over the bus: each service beats on the heartbeats topic; the gateway listens.

A beat that arrives proves the sender is up and can publish to the bus, which is what /healthz
reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker

from voicebus_contracts import ServiceHeartbeat, envelope
from voicebus_contracts.topics import HEARTBEATS
from voicebus_runtime.bus import publish

log = logging.getLogger(__name__)


class Heartbeat:
    """Publishes a ServiceHeartbeat every `interval_s` while running."""

    def __init__(self, broker: KafkaBroker, *, service: str, instance: str, interval_s: float):
        self._broker = broker
        self._beat = ServiceHeartbeat(service=service, instance=instance)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self._beat.service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                env = envelope(self._beat, call_id=self._beat.instance, producer=self._beat.service)
                await publish(self._broker, HEARTBEATS, env)
            except Exception:
                log.warning("heartbeat not published; the bus may be down", exc_info=True)
            await asyncio.sleep(self._interval_s)


@dataclass
class LivenessBoard:
    """Who beat recently: a service is up if any of its instances beat within `stale_after_s`."""

    expected: tuple[str, ...]
    stale_after_s: float
    _last_seen: dict[str, float] = field(default_factory=dict)

    def saw(self, beat: ServiceHeartbeat, at: float | None = None) -> None:
        self._last_seen[beat.service] = time.time() if at is None else at

    def missing(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        return [
            service
            for service in self.expected
            if now - self._last_seen.get(service, float("-inf")) > self.stale_after_s
        ]
