import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    Envelope,
    OutboundAudioChunk,
    envelope,
)
from voicebus_gateway.playback import PausedAt, Playback, PlaybackPosition

FRAME = 160
"""20 ms of mu-law at 8 kHz."""


class FakeClock:
    """Time moves only when the test advances it."""

    def __init__(self) -> None:
        self.t = 0.0
        self._advanced = asyncio.Event()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        wake = self.t + seconds
        await asyncio.sleep(0)
        while self.t < wake - 1e-9:
            self._advanced.clear()
            await self._advanced.wait()

    async def advance(self, seconds: float, *, step: float = 0.01) -> None:
        for _ in range(round(seconds / step)):
            self.t += step
            self._advanced.set()
            await settle()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


@dataclass
class FakeSink:
    clock: FakeClock
    sent: list[tuple[float, str, bytes | str | None]] = field(default_factory=list)

    async def send_audio(self, audio: bytes) -> None:
        self.sent.append((self.clock.now(), "media", audio))

    async def send_mark(self, name: str) -> None:
        self.sent.append((self.clock.now(), "mark", name))

    async def clear(self) -> None:
        self.sent.append((self.clock.now(), "clear", None))

    def kinds(self) -> list[str]:
        return [kind for _, kind, _ in self.sent]

    def media(self) -> list[tuple[float, bytes]]:
        return [(at, audio) for at, kind, audio in self.sent if isinstance(audio, bytes)]


@dataclass
class Harness:
    clock: FakeClock
    sink: FakeSink
    playback: Playback
    started: list[tuple[Envelope[OutboundAudioChunk], int]]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    clock = FakeClock()
    sink = FakeSink(clock)
    started: list[tuple[Envelope[OutboundAudioChunk], int]] = []

    async def on_reply_started(chunk: Envelope[OutboundAudioChunk]) -> None:
        started.append((chunk, len(sink.media())))

    playback = Playback(
        call_id="CA1",
        sink=sink,
        audio_format=TELEPHONE,
        on_reply_started=on_reply_started,
        clock=clock,
        lead_s=0.1,
    )
    playback.start()
    yield Harness(clock, sink, playback, started)
    await playback.stop()


def chunk(
    reply_id: str,
    seq: int,
    audio: bytes,
    *,
    audio_format: AudioFormat = TELEPHONE,
    sentence: int = 0,
) -> Envelope[OutboundAudioChunk]:
    event = OutboundAudioChunk(
        reply_id=reply_id,
        sentence=sentence,
        seq=seq,
        audio=audio,
        format=audio_format,
        last=False,
    )
    return envelope(event, call_id="CA1", producer="tts")


async def test_a_chunk_is_sent_in_20ms_frames_then_a_mark(harness: Harness) -> None:
    audio = bytes(range(200)) * 2
    assert harness.playback.enqueue(chunk("r1", 0, audio))
    await settle()

    assert harness.sink.kinds() == ["media", "media", "media", "mark"]
    frames = [frame for _, frame in harness.sink.media()]
    assert [len(frame) for frame in frames] == [FRAME, FRAME, 80]
    assert b"".join(frames) == audio
    assert harness.sink.sent[-1][2] == "r1:0:0"


async def test_frames_are_paced_to_real_time_a_little_ahead(harness: Harness) -> None:
    one_second = bytes(50 * FRAME)
    harness.playback.enqueue(chunk("r1", 0, one_second))
    await settle()
    await harness.clock.advance(1.0)

    sent_at = [at for at, _ in harness.sink.media()]
    assert len(sent_at) == 50
    # Frame i plays at i * 20 ms and is sent 100 ms before that (at once for the first ones).
    expected = [max(0.0, i * 0.02 - 0.1) for i in range(50)]
    assert sent_at == pytest.approx(expected, abs=0.011)
    assert harness.sink.kinds()[-1] == "mark"


async def test_after_a_pause_the_schedule_restarts_from_now(harness: Harness) -> None:
    harness.playback.enqueue(chunk("r1", 0, bytes(2 * FRAME)))
    await settle()
    await harness.clock.advance(3.0)
    harness.playback.enqueue(chunk("r1", 1, bytes(2 * FRAME)))
    await settle()

    assert [at for at, _ in harness.sink.media()] == pytest.approx([0.0, 0.0, 3.0, 3.0])


async def test_the_start_of_each_reply_is_reported_once_when_its_first_frame_is_sent(
    harness: Harness,
) -> None:
    first = chunk("r1", 0, bytes(FRAME))
    harness.playback.enqueue(first)
    harness.playback.enqueue(chunk("r1", 1, bytes(FRAME)))
    second = chunk("r2", 0, bytes(FRAME))
    harness.playback.enqueue(second)
    await settle()
    await harness.clock.advance(0.2)

    assert harness.started == [(first, 1), (second, 3)]


async def test_mark_echoes_tell_how_far_the_caller_heard(harness: Harness) -> None:
    harness.playback.enqueue(chunk("r1", 0, bytes(FRAME)))
    harness.playback.enqueue(chunk("r1", 1, bytes(FRAME)))
    harness.playback.enqueue(chunk("r1", 2, bytes(FRAME)))
    await settle()
    assert harness.playback.heard is None

    harness.playback.mark_echoed("r1:0:0")
    assert harness.playback.heard == PlaybackPosition("r1", 0, 0)
    harness.playback.mark_echoed("not-ours")
    assert harness.playback.heard == PlaybackPosition("r1", 0, 0)
    harness.playback.mark_echoed("r1:0:2")
    assert harness.playback.heard == PlaybackPosition("r1", 0, 2)
    harness.playback.mark_echoed("r1:0:1")  # already passed
    assert harness.playback.heard == PlaybackPosition("r1", 0, 2)


async def test_clear_drops_what_is_queued_and_flushes_the_transport(harness: Harness) -> None:
    harness.playback.enqueue(chunk("r1", 0, bytes(50 * FRAME)))
    await settle()
    sent_before_clear = len(harness.sink.media())
    assert sent_before_clear < 50

    await harness.playback.clear()
    await harness.clock.advance(1.0)
    assert harness.sink.kinds()[-1] == "clear"
    assert len(harness.sink.media()) == sent_before_clear
    assert "mark" not in harness.sink.kinds()

    # The next reply plays at once, and echoes of dropped audio never count as heard.
    harness.playback.enqueue(chunk("r2", 0, bytes(FRAME)))
    await settle()
    assert harness.sink.kinds()[-2:] == ["media", "mark"]
    assert [c.event.reply_id for c, _ in harness.started] == ["r1", "r2"]
    harness.playback.mark_echoed("r1:0:0")
    assert harness.playback.heard is None


async def test_redelivered_and_wrongly_encoded_chunks_are_dropped(harness: Harness) -> None:
    assert harness.playback.enqueue(chunk("r1", 0, bytes(FRAME)))
    assert not harness.playback.enqueue(chunk("r1", 0, bytes(FRAME)))
    assert not harness.playback.enqueue(chunk("r1", 1, bytes(2 * FRAME), audio_format=SPEECH_16K))
    await settle()
    assert harness.sink.kinds() == ["media", "mark"]


async def test_a_failing_socket_ends_playback_quietly() -> None:
    class ClosedSink(FakeSink):
        attempts = 0

        async def send_audio(self, audio: bytes) -> None:
            ClosedSink.attempts += 1
            raise RuntimeError("websocket is closed")

    reported: list[str] = []

    async def on_reply_started(chunk: Envelope[OutboundAudioChunk]) -> None:
        reported.append(chunk.event.reply_id)

    clock = FakeClock()
    playback = Playback(
        call_id="CA1",
        sink=ClosedSink(clock),
        audio_format=TELEPHONE,
        on_reply_started=on_reply_started,
        clock=clock,
    )
    playback.start()
    playback.enqueue(chunk("r1", 0, bytes(FRAME)))
    await settle()
    playback.enqueue(chunk("r2", 0, bytes(FRAME)))
    await settle()
    await playback.stop()
    assert ClosedSink.attempts == 1  # playback stopped at the first failure, without raising
    assert reported == []  # nothing was played, so no reply started


def media_frames(harness: Harness) -> list[bytes]:
    return [audio for _, audio in harness.sink.media()]


async def test_a_pause_stops_at_once_and_resume_replays_what_was_not_heard(
    harness: Harness,
) -> None:
    # Two chunks of one sentence, 5 frames each, every frame distinct.
    audio = [bytes([n]) * FRAME for n in range(10)]
    harness.playback.enqueue(chunk("r1", 0, b"".join(audio[:5])))
    harness.playback.enqueue(chunk("r1", 1, b"".join(audio[5:])))
    await settle()
    await harness.clock.advance(0.1)  # chunk 0 sent (and its mark), chunk 1 under way
    harness.playback.mark_echoed("r1:0:0")  # the caller heard chunk 0

    paused = await harness.playback.pause()
    assert paused == PausedAt("r1", sentence=0, fraction=0.5)
    assert harness.sink.kinds()[-1] == "clear"
    sent = len(harness.sink.media())
    await harness.clock.advance(1.0)
    assert len(harness.sink.media()) == sent, "nothing plays while paused"
    assert await harness.playback.pause() is None, "already paused"

    harness.playback.resume()
    await settle()
    await harness.clock.advance(1.0)
    frames = media_frames(harness)
    # After the clear, playback starts again with chunk 1's first frame: nothing lost, no gap.
    assert frames[sent:] == audio[5:]
    assert harness.sink.kinds()[-1] == "mark"


async def test_cancel_drops_the_reply_and_anything_of_it_still_to_come(
    harness: Harness,
) -> None:
    harness.playback.enqueue(chunk("r1", 0, bytes(50 * FRAME)))
    await settle()
    assert await harness.playback.pause() == PausedAt("r1", sentence=0, fraction=0.0)
    sent = len(harness.sink.media())

    harness.playback.cancel("r1")
    assert not harness.playback.enqueue(chunk("r1", 1, bytes(FRAME), sentence=1))
    harness.playback.enqueue(chunk("r2", 0, bytes([7]) * FRAME))
    await settle()
    await harness.clock.advance(0.5)
    assert media_frames(harness)[sent:] == [bytes([7]) * FRAME], "only the new reply plays"


async def test_nothing_to_pause_when_the_agent_is_silent(harness: Harness) -> None:
    assert await harness.playback.pause() is None
    assert "clear" not in harness.sink.kinds()
    harness.playback.enqueue(chunk("r1", 0, bytes(FRAME)))
    await settle()
    assert harness.sink.kinds() == ["media", "mark"], "not paused"


async def test_a_pause_nobody_ends_drops_what_was_paused(harness: Harness) -> None:
    harness.playback.enqueue(chunk("r1", 0, bytes(50 * FRAME)))
    await settle()
    assert await harness.playback.pause() is not None
    sent = len(harness.sink.media())
    await harness.clock.advance(10.5)
    assert not harness.playback.paused
    assert len(harness.sink.media()) == sent, "the stale reply is not resumed"
    harness.playback.enqueue(chunk("r2", 0, bytes(FRAME)))
    await settle()
    assert len(harness.sink.media()) == sent + 1
