"""Waiting, in a test, for something another task or process brings about."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.01


async def until(
    condition: Callable[[], bool], *, what: str = "the condition", timeout_s: float = 5.0
) -> None:
    """Return once `condition()` holds; AssertionError naming `what` after `timeout_s`."""
    for _ in range(round(timeout_s / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")
