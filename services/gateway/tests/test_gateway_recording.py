"""Call recordings: the caller on the left, what the caller heard of the agent on the right, one
timeline from the call's start. The recorder is driven through the real Playback on a fake clock
(so times are exact), and through the gateway's real sockets."""

from __future__ import annotations

import asyncio
import json
import uuid
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_audio import from_mono_pcm16
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    CallStarted,
    Envelope,
    OutboundAudioChunk,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentSpec
from voicebus_contracts.topics import AUDIO_IN, CALLS, gateway_topic
from voicebus_devstack.polling import until
from voicebus_gateway.playback import Playback
from voicebus_gateway.recording import CallRecorder, RecordedSink, Recordings
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import publish

from .conftest import Running, gateway_settings, open_call, twilio_media
from .test_gateway_playback import FakeClock, FakeSink, settle

CALLER_HZ = 300.0
AGENT_HZ = 700.0
SILENT = 50.0
"""RMS below this is silence (a tone here has an RMS of about 5,700)."""
LOUD = 3_000.0
FRAME_S = 0.02
PRIVATE_NUMBER = "+15550100009"


def tone(hz: float, seconds: float, rate: int) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * rate)) / rate
    return (8_000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float, rate: int) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * rate), dtype=np.int16)


@dataclass(frozen=True)
class Recording:
    rate: int
    left: npt.NDArray[np.int16]
    right: npt.NDArray[np.int16]

    def span(
        self, channel: npt.NDArray[np.int16], start_s: float, end_s: float
    ) -> npt.NDArray[np.float64]:
        return channel[round(start_s * self.rate) : round(end_s * self.rate)].astype(np.float64)

    def loudness(self, channel: npt.NDArray[np.int16], start_s: float, end_s: float) -> float:
        return float(np.sqrt(np.mean(self.span(channel, start_s, end_s) ** 2)))

    def pitch(self, channel: npt.NDArray[np.int16], start_s: float, end_s: float) -> float:
        """The strongest frequency in the window, in Hz."""
        window = self.span(channel, start_s, end_s)
        spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
        return float(np.fft.rfftfreq(len(window), 1 / self.rate)[np.argmax(spectrum)])

    def sounding(self, channel: npt.NDArray[np.int16]) -> tuple[float, float]:
        """From the first sound in the channel to the end of the last, in seconds."""
        loud = np.flatnonzero(np.abs(channel) > SILENT)
        return float(loud[0]) / self.rate, float(loud[-1] + 1) / self.rate


def read(path: Path) -> Recording:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        return Recording(wav.getframerate(), stereo[:, 0], stereo[:, 1])


def call_started(
    audio_in: AudioFormat, audio_out: AudioFormat, agent_id: str = "default"
) -> CallStarted:
    return CallStarted(
        transport="web" if audio_in == SPEECH_16K else "twilio",
        agent_id=agent_id,
        gateway_id="gateway-0",
        audio_in=audio_in,
        audio_out=audio_out,
    )


def reply(audio: bytes, fmt: AudioFormat) -> Envelope[OutboundAudioChunk]:
    chunk = OutboundAudioChunk(reply_id="r1", sentence=0, seq=0, audio=audio, format=fmt, last=True)
    return envelope(chunk, call_id="CA1", producer="tts")


@dataclass
class Call:
    """A call on a fake clock: its recorder, and its playback sending to a fake caller's end."""

    clock: FakeClock
    recorder: CallRecorder
    playback: Playback
    sink: FakeSink
    caller_format: AudioFormat
    agent_format: AudioFormat

    async def caller_says(self, samples: npt.NDArray[np.int16]) -> None:
        """The caller's stream, a 20 ms frame every 20 ms, as the transport delivers it."""
        audio = from_mono_pcm16(samples, self.caller_format)
        frame = (
            round(FRAME_S * self.caller_format.sample_rate) * self.caller_format.bytes_per_sample
        )
        for start in range(0, len(audio), frame):
            self.recorder.caller_spoke(audio[start : start + frame])
            await self.clock.advance(FRAME_S)

    async def agent_says(self, samples: npt.NDArray[np.int16]) -> None:
        self.playback.enqueue(reply(from_mono_pcm16(samples, self.agent_format), self.agent_format))
        await settle()

    async def end(self) -> Recording:
        await self.playback.stop()
        path = await self.recorder.finish()
        assert path is not None
        return read(path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def agents() -> AgentDirectory:
    directory = AgentDirectory()
    private = AgentSpec(agent_id="private", name="Private", recording=False)
    directory.heard(envelope(AgentConfigured(agent=private), call_id="private", producer="agent"))
    return directory


@pytest.fixture
def recordings(tmp_path: Path, agents: AgentDirectory, clock: FakeClock) -> Recordings:
    return Recordings(directory=tmp_path / "recordings", agents=agents, clock=clock)


@asynccontextmanager
async def start_call(
    recordings: Recordings,
    clock: FakeClock,
    caller_format: AudioFormat,
    agent_format: AudioFormat | None = None,
) -> AsyncIterator[Call]:
    agent_format = agent_format or caller_format
    recorder = recordings.start("CA1", call_started(caller_format, agent_format))
    assert recorder is not None
    sink = FakeSink(clock)

    async def reply_started(_: Envelope[OutboundAudioChunk]) -> None:
        pass

    playback = Playback(
        call_id="CA1",
        sink=RecordedSink(sink, recorder),
        audio_format=agent_format,
        on_reply_started=reply_started,
        clock=clock,
        lead_s=0.1,
    )
    playback.start()
    yield Call(clock, recorder, playback, sink, caller_format, agent_format)
    await playback.stop()


@pytest.fixture(params=[TELEPHONE, SPEECH_16K], ids=["telephone", "web"])
async def call(
    request: pytest.FixtureRequest, recordings: Recordings, clock: FakeClock
) -> AsyncIterator[Call]:
    async with start_call(recordings, clock, request.param) as started:
        yield started


async def test_the_caller_is_on_the_left_and_the_agent_on_the_right_at_their_times(
    call: Call,
) -> None:
    rate = call.caller_format.sample_rate
    # The caller speaks from 0.0 to 1.0 s and is quiet after; the agent answers at 1.5 s for 1 s.
    await call.caller_says(np.concatenate([tone(CALLER_HZ, 1.0, rate), silence(0.5, rate)]))
    await call.agent_says(tone(AGENT_HZ, 1.0, rate))
    await call.caller_says(silence(1.5, rate))
    recording = await call.end()

    assert recording.rate == rate
    assert len(recording.left) == len(recording.right) == 3 * rate
    left, right = recording.left, recording.right
    assert recording.sounding(left) == pytest.approx((0.0, 1.0), abs=FRAME_S)
    assert recording.loudness(left, 0.0, 1.0) > LOUD
    assert recording.pitch(left, 0.0, 1.0) == pytest.approx(CALLER_HZ, abs=5)
    assert recording.loudness(left, 1.02, 3.0) < SILENT

    assert recording.sounding(right) == pytest.approx((1.5, 2.5), abs=FRAME_S)
    assert recording.loudness(right, 0.0, 1.5) < SILENT
    assert recording.loudness(right, 1.5, 2.5) > LOUD
    assert recording.pitch(right, 1.5, 2.5) == pytest.approx(AGENT_HZ, abs=5)
    assert recording.loudness(right, 2.52, 3.0) < SILENT


async def test_agent_audio_cleared_before_the_caller_heard_it_is_not_recorded(
    call: Call,
) -> None:
    rate = call.caller_format.sample_rate
    await call.caller_says(silence(0.5, rate))
    await call.agent_says(tone(AGENT_HZ, 2.0, rate))
    await call.caller_says(silence(0.5, rate))
    await call.playback.clear()  # the caller barged in at 1.0 s
    await call.caller_says(tone(CALLER_HZ, 1.0, rate))
    recording = await call.end()

    sent_s = sum(len(frame) for _, frame in call.sink.media()) / (
        call.agent_format.bytes_per_sample * call.agent_format.sample_rate
    )
    assert sent_s > 0.5 + FRAME_S, "audio was sent ahead of the clear"
    right = recording.right
    assert recording.loudness(right, 0.5, 1.0) > LOUD
    # What was sent ahead of 1.0 s and dropped at the caller's end by the clear is not in it.
    assert recording.sounding(right) == pytest.approx((0.5, 1.0), abs=FRAME_S)
    assert recording.loudness(right, 1.0, 2.0) < SILENT
    assert recording.pitch(recording.left, 1.0, 2.0) == pytest.approx(CALLER_HZ, abs=5)


async def test_a_reply_paused_then_resumed_is_recorded_as_the_caller_heard_it(
    call: Call,
) -> None:
    rate = call.caller_format.sample_rate
    await call.agent_says(tone(AGENT_HZ, 1.0, rate))
    await call.caller_says(silence(0.5, rate))
    assert await call.playback.pause() is not None  # the caller starts speaking at 0.5 s
    await call.caller_says(silence(0.5, rate))
    call.playback.resume()  # only a cough: the agent carries on at 1.0 s
    await call.caller_says(silence(1.5, rate))
    recording = await call.end()

    right = recording.right
    assert recording.loudness(right, 0.0, 0.5) > LOUD
    assert recording.loudness(right, 0.5, 1.0) < SILENT, "nothing played while paused"
    # No mark was echoed: the whole reply plays again from its start.
    assert recording.loudness(right, 1.0, 2.0) > LOUD
    assert recording.pitch(right, 1.0, 2.0) == pytest.approx(AGENT_HZ, abs=5)
    assert recording.loudness(right, 2.02, 2.5) < SILENT


async def test_the_callers_frames_keep_their_place_through_a_stall_and_a_gap_stays_a_gap(
    recordings: Recordings, clock: FakeClock
) -> None:
    async with start_call(recordings, clock, TELEPHONE) as call:
        frames = [from_mono_pcm16(tone(CALLER_HZ, FRAME_S, 8_000), TELEPHONE) for _ in range(50)]
        # 0.0-1.0 s spoken; the frames of 0.4-0.6 s reach the gateway late, all at 0.6 s.
        for n, frame in enumerate(frames):
            if not 20 <= n < 30:
                call.recorder.caller_spoke(frame)
            if n == 29:
                for late in frames[20:30]:
                    call.recorder.caller_spoke(late)
            await clock.advance(FRAME_S)
        # Nothing from the caller's end for 2 s (it stopped sending), then 0.5 s more.
        await clock.advance(2.0)
        await call.caller_says(tone(CALLER_HZ, 0.5, 8_000))
        recording = await call.end()

    left = recording.left
    assert recording.loudness(left, 0.0, 1.0) > LOUD
    assert min(recording.loudness(left, t / 10, (t + 1) / 10) for t in range(10)) > LOUD
    assert recording.loudness(left, 1.0, 3.0) < SILENT
    assert recording.loudness(left, 3.0, 3.5) > LOUD
    assert len(left) == round(3.5 * 8_000)


async def test_directions_at_different_rates_are_recorded_at_the_higher(
    recordings: Recordings, clock: FakeClock
) -> None:
    async with start_call(recordings, clock, TELEPHONE, SPEECH_16K) as call:
        await call.caller_says(tone(CALLER_HZ, 1.0, 8_000))
        await call.agent_says(tone(AGENT_HZ, 1.0, 16_000))
        await call.caller_says(silence(1.2, 8_000))
        recording = await call.end()

    assert recording.rate == 16_000
    assert recording.pitch(recording.left, 0.0, 1.0) == pytest.approx(CALLER_HZ, abs=5)
    assert recording.pitch(recording.right, 1.0, 2.0) == pytest.approx(AGENT_HZ, abs=5)
    assert recording.loudness(recording.right, 1.1, 1.9) > LOUD


async def test_the_recording_is_written_as_the_call_goes_and_appears_whole_at_its_end(
    recordings: Recordings, clock: FakeClock
) -> None:
    directory = recordings.directory
    async with start_call(recordings, clock, TELEPHONE) as call:
        await call.caller_says(tone(CALLER_HZ, 5.0, 8_000))
        part = directory / ".CA1.wav.part"
        # Written out behind the call (about a second behind), not held in memory to its end.
        await until(lambda: part.exists() and part.stat().st_size >= 44 + 3 * 8_000 * 4)
        assert not (directory / "CA1.wav").exists()
        recording = await call.end()

    assert [p.name for p in directory.iterdir()] == ["CA1.wav"]
    assert len(recording.left) == 5 * 8_000
    assert recording.loudness(recording.left, 0.0, 5.0) > LOUD


async def test_calls_of_an_agent_that_records_none_are_not_recorded(
    recordings: Recordings,
) -> None:
    assert recordings.start("CA1", call_started(TELEPHONE, TELEPHONE, "private")) is None
    assert recordings.start("CA2", call_started(TELEPHONE, TELEPHONE, "unknown")) is not None


def test_a_call_id_that_is_not_a_plain_name_is_not_recorded(recordings: Recordings) -> None:
    for call_id in ("../CA1", "CA1.wav", "CA/1", ""):
        assert recordings.start(call_id, call_started(TELEPHONE, TELEPHONE)) is None


# --- through the gateway's sockets -----------------------------------------------------------


@pytest.fixture
def settings(analytics_url: str, tmp_path: Path) -> GatewaySettings:
    return gateway_settings(analytics_url, recordings_dir=tmp_path / "recordings")


def stop_message(call_sid: str) -> str:
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": "99",
            "streamSid": "MZ1",
            "stop": {"accountSid": "AC1", "callSid": call_sid},
        }
    )


async def ended(running: Running, call_sid: str) -> None:
    calls = running.published[CALLS.name]
    await until(lambda: any(k == call_sid and e["event"]["type"] == "call.ended" for k, e in calls))


async def test_a_phone_call_through_the_gateway_is_recorded_in_stereo(
    running: Running, settings: GatewaySettings
) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    caller = from_mono_pcm16(tone(CALLER_HZ, 1.0, 8_000), TELEPHONE)
    for chunk in range(50):
        await socket.send(twilio_media(chunk, caller[chunk * 160 : (chunk + 1) * 160]))
    frames = running.published[AUDIO_IN.name]
    await until(lambda: len(frames) == 50)

    answer = from_mono_pcm16(tone(AGENT_HZ, 0.5, 8_000), TELEPHONE)
    chunk_env = envelope(
        OutboundAudioChunk(
            reply_id="r1", sentence=0, seq=0, audio=answer, format=TELEPHONE, last=True
        ),
        call_id=call_sid,
        producer="tts",
    )
    await publish(running.gateway.broker, gateway_topic(running.gateway.gateway_id), chunk_env)
    while json.loads(await asyncio.wait_for(socket.recv(), 5.0))["event"] != "mark":
        pass
    # The last frames were sent ahead of their time (the playback lead): the caller hangs up
    # once they have played, else they are rightly not in the recording.
    await asyncio.sleep(2 * settings.playback_lead_ms / 1000)
    await socket.send(stop_message(call_sid))
    await ended(running, call_sid)
    await socket.close()

    recording = read(settings.recordings_dir / f"{call_sid}.wav")
    assert recording.rate == 8_000
    left, right = recording.left, recording.right
    assert recording.pitch(left, 0.0, len(left) / 8_000) == pytest.approx(CALLER_HZ, abs=5)
    assert recording.pitch(right, 0.0, len(right) / 8_000) == pytest.approx(AGENT_HZ, abs=5)
    # The caller spoke first; each side holds all it said, and only that.
    (caller_from, caller_to), (agent_from, agent_to) = (
        recording.sounding(left),
        recording.sounding(right),
    )
    assert caller_from < agent_from
    assert caller_to - caller_from == pytest.approx(1.0, abs=FRAME_S)
    assert agent_to - agent_from == pytest.approx(0.5, abs=FRAME_S)


async def test_a_phone_call_to_an_agent_that_records_none_leaves_no_file(
    running: Running, settings: GatewaySettings
) -> None:
    private = AgentSpec(
        agent_id="private", name="Private", phone_numbers=(PRIVATE_NUMBER,), recording=False
    )
    running.gateway.agents.heard(
        envelope(AgentConfigured(agent=private), call_id="private", producer="agent")
    )
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid, to=PRIVATE_NUMBER)
    caller = from_mono_pcm16(tone(CALLER_HZ, 0.2, 8_000), TELEPHONE)
    for chunk in range(10):
        await socket.send(twilio_media(chunk, caller[chunk * 160 : (chunk + 1) * 160]))
    await until(lambda: len(running.published[AUDIO_IN.name]) == 10)
    await socket.send(stop_message(call_sid))
    await ended(running, call_sid)
    await socket.close()

    started = next(e for k, e in running.published[CALLS.name] if k == call_sid)
    assert started["event"]["agent_id"] == "private"
    assert not settings.recordings_dir.exists() or not any(settings.recordings_dir.iterdir())
