"""The caller's audio on its way to the bus, without ever holding up the call's socket.

Publishing a frame normally takes microseconds (no acknowledgement is awaited). When the bus is
slow or out of reach, the Kafka client stops taking frames once its own buffer is full, and
awaiting it would stop the socket's reader: the caller's audio would back up in Twilio or the
browser and the call would hang. So each call's frames go through an `Uplink`: the socket hands
a frame over and goes on, and a task publishes the frames in order. The frames of a bus outage
wait (up to the uplink's capacity) and are sent once it is back; beyond that the call cannot go
on, and the switchboard sheds it with the apology (`apology_in`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files

from voicebus_audio import from_mono_pcm16, mulaw_to_pcm16, resample
from voicebus_contracts import TELEPHONE, AudioFormat, InboundAudioFrame

log = logging.getLogger(__name__)

FRAMES_PER_S = 50
"""The caller's audio comes in 20 ms frames."""


class Uplink:
    """One call's caller audio, published in order by a task of its own, `capacity` frames
    waiting at most; `on_overflow` is told, once, when a frame finds no room."""

    def __init__(
        self,
        send: Callable[[InboundAudioFrame], Awaitable[None]],
        *,
        capacity: int,
        on_overflow: Callable[[], None],
    ) -> None:
        self._frames: asyncio.Queue[InboundAudioFrame] = asyncio.Queue(capacity)
        self._send = send
        self._on_overflow = on_overflow
        self._overflowed = False
        # Made in the caller's context: what it publishes belongs to the call's trace.
        self._sending = asyncio.create_task(self._run(), name="uplink")

    def put(self, frame: InboundAudioFrame) -> None:
        """Hand `frame` over; returns at once."""
        try:
            self._frames.put_nowait(frame)
        except asyncio.QueueFull:
            if not self._overflowed:
                self._overflowed = True
                self._on_overflow()

    async def close(self) -> None:
        """Stop sending: what has not been sent by now is dropped with the call."""
        self._sending.cancel()
        await asyncio.gather(self._sending, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            frame = await self._frames.get()
            try:
                await self._send(frame)
            except Exception:
                log.exception("caller audio frame %d not published: lost", frame.seq)


def apology_in(fmt: AudioFormat) -> bytes:
    """The gateway's spoken apology (assets/apology.ulaw, written by
    `python -m voicebus_devstack.apology`) in the call's outbound format."""
    recorded = files("voicebus_gateway").joinpath("assets/apology.ulaw").read_bytes()
    if fmt == TELEPHONE:
        return recorded
    pcm = resample(
        mulaw_to_pcm16(recorded), from_rate=TELEPHONE.sample_rate, to_rate=fmt.sample_rate
    )
    return from_mono_pcm16(pcm, fmt)
