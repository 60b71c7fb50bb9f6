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
    chunk: Envelope[OutboundAudioChunk] | None
    """The reply chunk the frame is from; None for audio that is not a reply (tones)."""


@dataclass(frozen=True)
class _Mark:
    name: str
    position: PlaybackPosition


@dataclass(frozen=True)
class PausedAt:
    """Where a reply was paused: how far its caller had heard it."""

    reply_id: str
    sentence: int
    """The reply's text chunks before this one were heard whole."""
    fraction: float
    """About how much of chunk `sentence` was heard, from the audio chunks whose marks echoed
    against those received so far for it."""


def _reply_of(item: _Frame | _Mark) -> str | None:
    if isinstance(item, _Mark):
        return item.position.reply_id
    return None if item.chunk is None else item.chunk.event.reply_id


class Playback:
    """Plays one call's reply audio to its caller in real time, slightly ahead.

    Chunks are cut into frames (20 ms by default), each sent `lead_s` before it is due to play on a
    schedule kept on a monotonic clock, so the transport holds about `lead_s` of audio and the
    pace never drifts. A mark follows each chunk; its echo moves `heard`, how far the caller has
    heard. `clear` flushes everything not yet played.

    Barge-in: `pause` stops the agent's audio at once (the transport drops what it buffered, and
    what it had not played goes back to the front of the queue), then either `resume` carries on
    from where the caller stopped hearing, or `cancel` drops the reply. A pause that nobody ends
    within `pause_limit_s` drops what was paused rather than hold the call silent.
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
        pause_limit_s: float = 10.0,
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
        self._sent_all = asyncio.Event()
        """Set while nothing is queued: all given so far has been sent to the transport."""
        self._due = -math.inf
        """When the next frame sent will start playing at the caller's end."""
        self._accepted: set[PlaybackPosition] = set()
        self._started_replies: set[str] = set()
        self._pending_marks: dict[str, PlaybackPosition] = {}
        self._unheard: deque[_Frame | _Mark] = deque()
        """Sent to the transport, not yet confirmed played by a mark's echo."""
        self._chunks_received: dict[tuple[str, int], int] = {}
        self._cancelled: set[str] = set()
        self._last_chunks: dict[str, PlaybackPosition] = {}
        """Each reply's last chunk, once it arrived."""
        self._heard_whole: dict[str, asyncio.Event] = {}
        self._paused_until: float | None = None
        self._pause_limit_s = pause_limit_s
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
        if chunk.reply_id in self._cancelled:
            log.info(
                "call %s: reply %s was cancelled, its chunk %d:%d dropped",
                self._call_id,
                chunk.reply_id,
                chunk.sentence,
                chunk.seq,
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
        if chunk.last:
            self._last_chunks[chunk.reply_id] = position
        sentence = (chunk.reply_id, chunk.sentence)
        self._chunks_received[sentence] = self._chunks_received.get(sentence, 0) + 1
        self._queue_frames(chunk.audio, env)
        self._queue.append(_Mark(f"{chunk.reply_id}:{chunk.sentence}:{chunk.seq}", position))
        self._wakeup.set()
        return True

    def enqueue_tones(self, audio: bytes) -> None:
        """Queue audio that is not a reply (DTMF tones, the gateway's apology), in the call's
        format: paced like a reply, after what is already queued, and never reported as a
        reply's start."""
        self._queue_frames(audio, None)
        self._wakeup.set()

    async def played_out(self) -> None:
        """Return once all that is queued now has been sent and, by the clock, played at the
        caller's end."""
        while self._queue:
            await self._sent_all.wait()
        await self._clock.sleep(max(0.0, self._due - self._clock.now()))

    def _queue_frames(self, audio: bytes, chunk: Envelope[OutboundAudioChunk] | None) -> None:
        self._sent_all.clear()
        for start in range(0, len(audio), self._frame_bytes):
            frame = audio[start : start + self._frame_bytes]
            self._queue.append(_Frame(frame, self._format.duration_ms(len(frame)) / 1000.0, chunk))

    async def clear(self) -> None:
        """Drop all queued audio and what the transport has buffered but not played: the
        replies in it are over."""
        for reply_id in {r for r in map(_reply_of, (*self._queue, *self._unheard)) if r}:
            self._reply_over(reply_id)
        self._queue.clear()
        self._unheard.clear()
        await self._flush_transport()
        self._paused_until = None
        self._wakeup.set()

    @property
    def paused(self) -> bool:
        return self._paused_until is not None

    async def pause(self) -> PausedAt | None:
        """Stop the agent's audio now; where its reply was, or None if nothing was playing."""
        if self.paused or not (self._unheard or self._queue):
            return None
        self._queue.extendleft(reversed(self._unheard))
        self._unheard.clear()
        self._paused_until = self._clock.now() + self._pause_limit_s
        await self._flush_transport()
        reply_id = next((r for r in map(_reply_of, self._queue) if r is not None), None)
        self._wakeup.set()
        if reply_id is None:  # only tones were playing
            return None
        return self._paused_at(reply_id)

    def resume(self) -> None:
        """Carry on playing what was paused."""
        self._paused_until = None
        self._wakeup.set()

    async def heard_whole(self, reply_id: str) -> None:
        """Returns once the caller has heard reply `reply_id` to its end (its last chunk's mark
        echoed), or once it was cancelled."""
        await self._heard_whole.setdefault(reply_id, asyncio.Event()).wait()

    def cancel(self, reply_id: str) -> None:
        """Drop reply `reply_id`, queued or yet to come; playback goes on with anything else."""
        self._cancelled.add(reply_id)
        self._reply_over(reply_id)
        self._queue = deque(item for item in self._queue if _reply_of(item) != reply_id)
        self._paused_until = None
        self._wakeup.set()

    def mark_echoed(self, name: str) -> None:
        """The transport played everything up to mark `name`."""
        if name not in self._pending_marks:
            return
        while self._unheard:
            played = self._unheard.popleft()
            if isinstance(played, _Mark) and played.name == name:
                break
        for pending in list(self._pending_marks):
            self.heard = self._pending_marks.pop(pending)
            if self.heard == self._last_chunks.get(self.heard.reply_id):
                self._reply_over(self.heard.reply_id)
            if pending == name:
                return

    def _reply_over(self, reply_id: str) -> None:
        self._heard_whole.setdefault(reply_id, asyncio.Event()).set()

    async def _flush_transport(self) -> None:
        # The transport echoes the marks of audio it drops: those must not count as heard.
        self._pending_marks.clear()
        self._due = -math.inf
        await self._sink.clear()

    def _paused_at(self, reply_id: str) -> PausedAt:
        heard = self.heard
        if heard is None or heard.reply_id != reply_id:
            return PausedAt(reply_id, sentence=0, fraction=0.0)
        received = self._chunks_received.get((reply_id, heard.sentence), heard.seq + 1)
        return PausedAt(reply_id, heard.sentence, min(1.0, (heard.seq + 1) / received))

    async def _run(self) -> None:
        try:
            await self._play()
        except Exception:
            log.warning(
                "call %s: playback stopped, the caller's end failed", self._call_id, exc_info=True
            )

    async def _play(self) -> None:
        while True:
            if self._paused_until is not None:
                await self._wait_while_paused(self._paused_until)
                continue
            if not self._queue:
                self._sent_all.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue[0]
            if isinstance(item, _Mark):
                self._queue.popleft()
                self._unheard.append(item)
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
            self._unheard.append(item)
            await self._sink.send_audio(item.audio)
            self._due += item.duration_s
            if item.chunk is not None:
                await self._report_start(item.chunk)

    async def _wait_while_paused(self, until: float) -> None:
        """Until resumed, cancelled or cleared; past `until`, drop what was paused."""
        self._wakeup.clear()
        woken = asyncio.ensure_future(self._wakeup.wait())
        limit = asyncio.ensure_future(self._clock.sleep(max(0.0, until - self._clock.now())))
        try:
            await asyncio.wait({woken, limit}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            limit.cancel()
        if self._paused_until != until or self._clock.now() < until:
            return
        paused = sorted({r for r in map(_reply_of, self._queue) if r is not None})
        log.warning(
            "call %s: paused %.0f s with no decision to resume or cancel: dropped %s",
            self._call_id,
            self._pause_limit_s,
            paused,
        )
        for reply_id in paused:
            self.cancel(reply_id)
        self._paused_until = None

    async def _report_start(self, chunk: Envelope[OutboundAudioChunk]) -> None:
        reply_id = chunk.event.reply_id
        if reply_id in self._started_replies:
            return
        self._started_replies.add(reply_id)
        try:
            await self._on_reply_started(chunk)
        except Exception:
            log.exception("call %s: start of reply %s not reported", self._call_id, reply_id)
