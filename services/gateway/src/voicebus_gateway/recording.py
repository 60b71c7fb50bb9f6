"""Call recordings: one stereo WAV per call, the caller on the left, the agent on the right.

A call's recorder hears the caller's frames as they arrive and the agent's as they are sent to
the caller, and lays both on one timeline from the call's start, silence wherever a side is
quiet. The agent's audio goes where the caller's end plays it: after what it still holds, or at
once when it holds nothing; a clear (barge-in) drops what the caller's end held unplayed, so it
is cut from the recording too, and what the caller heard is what is recorded.

Memory stays small whatever the call's length: audio that nothing can land on any more (older
than CALLER_RESYNC_S) is written out about once a second, in a worker thread, to a hidden part
file beside the recording, renamed to `<call_id>.wav` when the call ends, so no reader ever sees
half a file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import wave
from array import array
from pathlib import Path

from voicebus_audio import PartialSampleError, Resampler, to_mono_pcm16
from voicebus_contracts import AudioFormat, CallStarted
from voicebus_gateway.ports import AudioSink, Clock, MonotonicClock
from voicebus_runtime.agents import AgentDirectory

log = logging.getLogger(__name__)

CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""A call id that is a plain file name (Twilio's CallSid, `web-<hex>`): no path, no dots."""
CALLER_RESYNC_S = 1.0
"""The caller's frames are laid end to end (a network stall delivers them late, in a burst, but
they were spoken back to back); a frame arriving this much later than the end of the last one
follows a real gap in the stream and goes where it arrived."""
SPILL_S = 1.0
"""Audio nothing can land on any more is written out once this much of it has gathered."""
MAX_RECORDING_S = 4 * 3600.0
"""A call is recorded up to this long: a WAV holds at most 4 GiB (6 h of 48 kHz stereo)."""
SAMPLE_BYTES = 2


class _Track:
    """One side of a call not written out yet: PCM16 from sample `start` on, zeros (silence)
    wherever nothing was placed."""

    def __init__(self) -> None:
        self.start = 0
        self.end: int | None = None
        """Where the last audio placed ends; None before any."""
        self._pcm = bytearray()

    def place(self, at: int, pcm: bytes) -> None:
        """`pcm` from sample `at` on, over anything there; any of it before `start` is dropped
        (that time is written out already)."""
        skip = max(0, self.start - at)
        offset = (at + skip - self.start) * SAMPLE_BYTES
        if offset > len(self._pcm):
            self._pcm.extend(bytes(offset - len(self._pcm)))
        data = pcm[skip * SAMPLE_BYTES :]
        self._pcm[offset : offset + len(data)] = data
        self.end = at + len(pcm) // SAMPLE_BYTES

    def cut(self, at: int) -> None:
        """Drop everything from sample `at` on."""
        del self._pcm[max(0, at - self.start) * SAMPLE_BYTES :]
        if self.end is not None:
            self.end = min(self.end, at)

    def take(self, upto: int) -> bytes:
        """Samples `start` to `upto`, given away: the track now starts at `upto`."""
        size = (upto - self.start) * SAMPLE_BYTES
        taken = bytes(self._pcm[:size]).ljust(size, b"\0")
        del self._pcm[:size]
        self.start = upto
        return taken


def _interleave(left: bytes, right: bytes) -> bytes:
    stereo = array("h", bytes(2 * len(left)))
    stereo[0::2] = array("h", left)
    stereo[1::2] = array("h", right)
    return stereo.tobytes()


class _WavFile:
    """A stereo PCM16 WAV written piece by piece under a hidden part name, then put in place.
    Its methods block: they run in worker threads, one at a time."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self._path = path
        self._part = path.with_name(f".{path.name}.part")
        self._sample_rate = sample_rate
        self._wav: wave.Wave_write | None = None

    def append(self, left: bytes, right: bytes) -> None:
        self._opened().writeframes(_interleave(left, right))

    def finish(self, left: bytes, right: bytes) -> None:
        wav = self._opened()
        wav.writeframes(_interleave(left, right))
        wav.close()
        self._part.replace(self._path)

    def discard(self) -> None:
        if self._wav is not None:
            self._wav.close()
        self._part.unlink(missing_ok=True)

    def _opened(self) -> wave.Wave_write:
        if self._wav is None:
            self._part.parent.mkdir(parents=True, exist_ok=True)
            wav = wave.open(str(self._part), "wb")  # noqa: SIM115 - open across appends
            wav.setnchannels(2)
            wav.setsampwidth(SAMPLE_BYTES)
            wav.setframerate(self._sample_rate)
            self._wav = wav
        return self._wav


class CallRecorder:
    """Records one call into `<directory>/<call_id>.wav`, at the higher of its two directions'
    sample rates (they are the same on every transport so far)."""

    def __init__(
        self,
        *,
        call_id: str,
        directory: Path,
        caller_format: AudioFormat,
        agent_format: AudioFormat,
        clock: Clock,
    ) -> None:
        self.call_id = call_id
        self.path = directory / f"{call_id}.wav"
        self._caller_format = caller_format
        self._agent_format = agent_format
        self._rate = max(caller_format.sample_rate, agent_format.sample_rate)
        self._caller_to_rate = Resampler(from_rate=caller_format.sample_rate, to_rate=self._rate)
        self._agent_to_rate = Resampler(from_rate=agent_format.sample_rate, to_rate=self._rate)
        self._clock = clock
        self._began = clock.now()
        self._resync = round(CALLER_RESYNC_S * self._rate)
        self._spill_samples = round(SPILL_S * self._rate)
        self._limit = round(MAX_RECORDING_S * self._rate)
        self._caller = _Track()
        self._agent = _Track()
        self._file = _WavFile(self.path, self._rate)
        self._writing: asyncio.Task[None] | None = None
        self._failed = False
        self._over = False
        """Finished, failed or full: nothing more is kept."""

    def caller_spoke(self, audio: bytes) -> None:
        """A frame of the caller's audio, as it arrived (in the call's inbound format)."""
        now = self._now()
        end = self._caller.end
        at = now if end is None or now - end > self._resync else end
        self._place(self._caller, at, self._pcm16(audio, self._caller_format, self._caller_to_rate))

    def agent_sent(self, audio: bytes) -> None:
        """A frame of the agent's audio, sent to the caller (in the call's outbound format)."""
        now = self._now()
        end = self._agent.end
        pcm = self._pcm16(audio, self._agent_format, self._agent_to_rate)
        self._place(self._agent, now if end is None else max(end, now), pcm)

    def agent_cleared(self) -> None:
        """The caller's end dropped the agent's audio it had not played yet."""
        self._agent.cut(self._now())

    async def finish(self) -> Path | None:
        """The call is over: write the rest and put the recording in place. Its path, or None
        if it could not be written (logged); never raises, the call ends either way."""
        now = self._now()
        self._agent.cut(now)  # sent ahead, never played: the caller hung up first
        end = min(max(now, self._caller.end or 0), self._limit)
        left, right = self._caller.take(end), self._agent.take(end)
        self._over = True
        if self._writing is not None:
            await self._writing
        try:
            if self._failed:
                await asyncio.to_thread(self._file.discard)
                return None
            await asyncio.to_thread(self._file.finish, left, right)
        except Exception:
            log.exception("call %s: recording not written", self.call_id)
            await asyncio.to_thread(self._file.discard)
            return None
        log.info("call %s: recorded %.1f s in %s", self.call_id, end / self._rate, self.path)
        return self.path

    def _now(self) -> int:
        """The call's time, in samples since it started."""
        return round((self._clock.now() - self._began) * self._rate)

    def _pcm16(self, audio: bytes, fmt: AudioFormat, to_rate: Resampler) -> bytes:
        """`audio` as mono PCM16 at the recording's rate; nothing if it is not whole samples."""
        try:
            samples = to_mono_pcm16(audio, fmt)
        except PartialSampleError:
            log.warning(
                "call %s: a frame of partial samples left out of the recording", self.call_id
            )
            return b""
        return to_rate.process(samples).tobytes()

    def _place(self, track: _Track, at: int, pcm: bytes) -> None:
        if self._over:
            return
        if at >= self._limit:
            log.warning("call %s: recorded %.0f s, the most kept", self.call_id, MAX_RECORDING_S)
            self._over = True
            return
        track.place(at, pcm)
        self._spill()

    def _spill(self) -> None:
        """Write out what nothing can land on any more (caller frames land at most
        CALLER_RESYNC_S back, the agent's and its clears from now on), one write at a time."""
        if self._writing is not None and not self._writing.done():
            return
        settled = min(self._now() - self._resync, self._limit)
        if settled - self._caller.start < self._spill_samples:
            return
        left, right = self._caller.take(settled), self._agent.take(settled)
        self._writing = asyncio.create_task(self._write(left, right))

    async def _write(self, left: bytes, right: bytes) -> None:
        try:
            await asyncio.to_thread(self._file.append, left, right)
        except Exception:
            log.exception("call %s: recording stopped, %s not writable", self.call_id, self.path)
            self._failed = self._over = True


class RecordedSink:
    """An AudioSink that records the agent's audio as it is sent to the caller."""

    def __init__(self, sink: AudioSink, recorder: CallRecorder) -> None:
        self._sink = sink
        self._recorder = recorder

    async def send_audio(self, audio: bytes) -> None:
        self._recorder.agent_sent(audio)
        await self._sink.send_audio(audio)

    async def send_mark(self, name: str) -> None:
        await self._sink.send_mark(name)

    async def clear(self) -> None:
        await self._sink.clear()
        self._recorder.agent_cleared()


class Recordings:
    """Where this replica records its calls: every call, but those of an agent whose
    `recording` is false (an agent not announced yet is recorded, as agents are by default)."""

    def __init__(
        self, *, directory: Path, agents: AgentDirectory, clock: Clock | None = None
    ) -> None:
        self.directory = directory
        self._agents = agents
        self._clock = clock or MonotonicClock()

    def start(self, call_id: str, started: CallStarted) -> CallRecorder | None:
        """The recorder of a call starting now; None if the call is not to be recorded."""
        agent = self._agents.get(started.agent_id)
        if agent is not None and not agent.recording:
            log.info("call %s: not recorded, agent %s records no calls", call_id, agent.agent_id)
            return None
        if not CALL_ID.fullmatch(call_id):
            log.warning("call %r: not recorded, its id cannot name a file", call_id)
            return None
        return CallRecorder(
            call_id=call_id,
            directory=self.directory,
            caller_format=started.audio_in,
            agent_format=started.audio_out,
            clock=self._clock,
        )
