"""The gateway's ports: where a call's playback goes, and the clock that paces it."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class AudioSink(Protocol):
    """The caller's end of a call, speaking the transport's own messages (Twilio, web, ...)."""

    async def send_audio(self, audio: bytes) -> None:
        """Send one frame of audio, already in the call's outbound format."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask the transport to echo `name` once everything sent before it has played."""
        ...

    async def clear(self) -> None:
        """Drop audio the transport has buffered but not yet played."""
        ...


class Clock(Protocol):
    """Monotonic time in seconds, and sleeping on it."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
