"""One timer per call, in this worker's memory: what the agent waits on (a pause in typing, a
caller who went quiet) before it answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class CallTimers:
    """At most one pending timer per call; when it is due, `on_due(call_id)` runs.

    Starting a call's timer replaces the one it had. Stopping is safe from inside `on_due`
    itself (which typically takes what the timer was for): a timer never cancels itself.
    """

    def __init__(self, on_due: Callable[[str], Awaitable[None]], *, waiting_for: str) -> None:
        self._on_due = on_due
        self._waiting_for = waiting_for
        self._timers: dict[str, asyncio.Task[None]] = {}

    def start(self, call_id: str, delay_s: float) -> None:
        self.stop(call_id)
        self._timers[call_id] = asyncio.create_task(
            self._wait(call_id, delay_s), name=f"{call_id}-{self._waiting_for}"
        )

    def stop(self, call_id: str) -> None:
        timer = self._timers.pop(call_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def close(self) -> None:
        for call_id in list(self._timers):
            self.stop(call_id)

    async def _wait(self, call_id: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            await self._on_due(call_id)
        except Exception:
            log.exception("call %s: the %s was not answered", call_id, self._waiting_for)
