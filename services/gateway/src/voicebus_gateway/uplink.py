"""The caller's audio on its way to the bus, without ever holding up the call's socket.

Publishing a frame normally takes microseconds (no acknowledgement is awaited). When the bus is
slow or out of reach, the Kafka client stops taking frames once its own buffer is full, and
awaiting it would stop the socket's reader: the caller's audio would back up in Twilio or the
browser and the call would hang. So each call's frames go through an `Uplink`: the socket hands
a frame over and goes on, and a task publishes the frames in order. The frames of a bus outage
wait (up to the uplink's capacity) and are sent once it is back; beyond that the call cannot go
on, and the switchboard sheds it with the apology (`apology_in`).

The uplink also gathers the transport's frames (Twilio's and the browser's are 20 ms) into bus
frames of `frame_ms`. A bus frame costs the gateway, the broker and media about the same whatever
its length, and at 50 a second per call that cost is most of what the platform spends on a call:
40 ms frames halve it, for about 10 ms more, on average, before media hears the end of a turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files

from voicebus_audio import from_mono_pcm16, mulaw_to_pcm16, resample
from voicebus_contracts import MAX_FRAME_BYTES, TELEPHONE, AudioFormat, InboundAudioFrame

log = logging.getLogger(__name__)

BUS_FRAME_MS = 40
"""The caller's audio goes to the bus in frames this long (see the module's doc)."""


class Uplink:
    """One call's caller audio in `fmt`, gathered into frames of `frame_ms` and published in
    order by a task of its own, `capacity_s` of audio waiting at most; `on_overflow` is told,
    once, when a frame finds no room."""

    def __init__(
        self,
        send: Callable[[InboundAudioFrame], Awaitable[None]],
        *,
        fmt: AudioFormat,
        frame_ms: int,
        capacity_s: float,
        on_overflow: Callable[[], None],
    ) -> None:
        self._format = fmt
        self._frame_ms = frame_ms
        self._frames: asyncio.Queue[InboundAudioFrame] = asyncio.Queue(
            max(1, round(capacity_s * 1000 / frame_ms))
        )
        self._gathered = bytearray()
        self._gathered_at = 0.0
        """When the gateway received the first audio of the frame being gathered."""
        self._next_seq = 0
        self._send = send
        self._on_overflow = on_overflow
        self._overflowed = False
        # Made in the caller's context: what it publishes belongs to the call's trace.
        self._sending = asyncio.create_task(self._run(), name="uplink")

    def put(self, audio: bytes, *, received_at: float) -> None:
        """Hand over the audio the gateway received at `received_at`; returns at once."""
        if self._gathered and len(self._gathered) + len(audio) > MAX_FRAME_BYTES:
            self._enqueue()
        if not self._gathered:
            self._gathered_at = received_at
        self._gathered += audio
        if self._format.duration_ms(len(self._gathered)) >= self._frame_ms:
            self._enqueue()

    def _enqueue(self) -> None:
        frame = InboundAudioFrame(
            seq=self._next_seq,
            audio=bytes(self._gathered),
            format=self._format,
            received_at=self._gathered_at,
        )
        self._next_seq += 1
        self._gathered.clear()
        try:
            self._frames.put_nowait(frame)
        except asyncio.QueueFull:
            if not self._overflowed:
                self._overflowed = True
                self._on_overflow()

    async def close(self) -> None:
        """Stop sending: what has not been sent by now (the frame being gathered too, at most
        `frame_ms` as the caller hangs up) is dropped with the call."""
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
