"""Playback of a call's reply audio: paced frames, marks that report what was heard, flushing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicebus_contracts import AudioFormat, Envelope, OutboundAudioChunk
from voicebus_gateway.ports import AudioSink, Clock, MonotonicClock

log = logging.getLogger(__name__)

_EARLY_OK_S = 0.001
"""A frame may go this much early: finer sleeps are below the event loop's resolution."""

ReplyStarted = Callable[[Envelope[OutboundAudioChunk]], Awaitable[None]]
"""Told the chunk whose first frame was the first audio of its reply sent to the caller."""


@dataclass(frozen=True)
class PlaybackPosition:
    """The end of one chunk of one reply."""

    reply_id: str
    sentence: int
    seq: int


@dataclass(frozen=True)
class _Frame:
    audio: bytes
    duration_s: float
    chunk: Envelope[OutboundAudioChunk]


@dataclass(frozen=True)
class _Mark:
    name: str
    position: PlaybackPosition


class Playback:
    """Plays one call's reply audio to its caller in real time, slightly ahead.

    Chunks are cut into frames (20 ms by default), each sent `lead_s` before it is due to play on a
    schedule kept on a monotonic clock, so the transport holds about `lead_s` of audio and the
    pace never drifts. A mark follows each chunk; its echo moves `heard`, how far the caller has
    heard. `clear` flushes everything not yet played (barge-in).
    """

    def __init__(
        self,
        *,
        call_id: str,
        sink: AudioSink,
        audio_format: AudioFormat,
        on_reply_started: ReplyStarted,
        clock: Clock | None = None,
        lead_s: float = 0.1,
        frame_ms: int = 20,
    ) -> None:
        self._call_id = call_id
        self._sink = sink
        self._format = audio_format
        self._on_reply_started = on_reply_started
        self._clock = clock or MonotonicClock()
        self._lead_s = lead_s
        self._frame_bytes = (
            audio_format.sample_rate * frame_ms // 1000 * audio_format.bytes_per_sample
        ) * audio_format.channels
        self._queue: deque[_Frame | _Mark] = deque()
        self._wakeup = asyncio.Event()
        self._due = -math.inf
        """When the next frame sent will start playing at the caller's end."""
        self._accepted: set[PlaybackPosition] = set()
        self._started_replies: set[str] = set()
        self._pending_marks: dict[str, PlaybackPosition] = {}
        self._task: asyncio.Task[None] | None = None
        self.heard: PlaybackPosition | None = None
        """The last chunk the transport reported as played to the caller."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"playback-{self._call_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def enqueue(self, env: Envelope[OutboundAudioChunk]) -> bool:
        """Queue a chunk for playback; False if it is dropped (wrong format, or seen before)."""
        chunk = env.event
        if chunk.format != self._format:
            log.warning(
                "call %s: dropped reply %s chunk %d in %s, the call plays %s",
                self._call_id,
                chunk.reply_id,
                chunk.seq,
                chunk.format,
                self._format,
            )
            return False
        position = PlaybackPosition(chunk.reply_id, chunk.sentence, chunk.seq)
        if position in self._accepted:
            log.info(
                "call %s: reply %s sentence %d chunk %d already queued, redelivery ignored",
                self._call_id,
                chunk.reply_id,
                chunk.sentence,
                chunk.seq,
            )
            return False
        self._accepted.add(position)
        for start in range(0, len(chunk.audio), self._frame_bytes):
            audio = chunk.audio[start : start + self._frame_bytes]
            self._queue.append(_Frame(audio, self._format.duration_ms(len(audio)) / 1000.0, env))
        self._queue.append(_Mark(f"{chunk.reply_id}:{chunk.sentence}:{chunk.seq}", position))
        self._wakeup.set()
        return True

    async def clear(self) -> None:
        """Drop all queued audio and what the transport has buffered but not played."""
        self._queue.clear()
        # The transport echoes the marks of audio it drops: those must not count as heard.
        self._pending_marks.clear()
        self._due = -math.inf
        await self._sink.clear()

    def mark_echoed(self, name: str) -> None:
        """The transport played everything up to mark `name`."""
        if name not in self._pending_marks:
            return
        for pending in list(self._pending_marks):
            self.heard = self._pending_marks.pop(pending)
            if pending == name:
                return

    async def _run(self) -> None:
        try:
            await self._play()
        except Exception:
            log.warning(
                "call %s: playback stopped, the caller's end failed", self._call_id, exc_info=True
            )

    async def _play(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue[0]
            if isinstance(item, _Mark):
                self._queue.popleft()
                self._pending_marks[item.name] = item.position
                await self._sink.send_mark(item.name)
                continue
            now = self._clock.now()
            # Behind schedule means the caller's end has played everything: restart from now.
            self._due = max(self._due, now)
            wait_s = self._due - self._lead_s - now
            if wait_s > _EARLY_OK_S:
                await self._clock.sleep(wait_s)
                continue  # a clear may have emptied the queue meanwhile
            self._queue.popleft()
            await self._sink.send_audio(item.audio)
            self._due += item.duration_s
            await self._report_start(item.chunk)

    async def _report_start(self, chunk: Envelope[OutboundAudioChunk]) -> None:
        reply_id = chunk.event.reply_id
        if reply_id in self._started_replies:
            return
        self._started_replies.add(reply_id)
        try:
            await self._on_reply_started(chunk)
        except Exception:
            log.exception("call %s: start of reply %s not reported", self._call_id, reply_id)
