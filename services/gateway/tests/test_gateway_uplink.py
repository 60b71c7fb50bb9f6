"""The caller's audio on its way to the bus: gathered into bus frames; with the bus out of reach
the caller's socket is never held up, the audio of a short outage waits and is sent, in order,
once the bus is back, and a call whose outage outlasts its uplink is shed: the caller hears the
apology, then the call is hung up."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from voicebus_audio import mulaw_to_pcm16
from voicebus_contracts import SPEECH_16K, TELEPHONE, CallStarted
from voicebus_contracts.topics import AUDIO_IN
from voicebus_devstack.polling import until
from voicebus_gateway.ports import CallActivity
from voicebus_gateway.recording import Recordings
from voicebus_gateway.switchboard import LiveCall, Switchboard
from voicebus_gateway.uplink import apology_in
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.registry import CallRegistry

FRAME = bytes(160)  # 20 ms of telephone audio, as Twilio sends it
FRAMES_PER_S = 50
BUS_FRAME_MS = 40
WAIT_S = 10.0
"""Guards against a hung test only."""


@dataclass
class Bus:
    """A broker whose caller-audio topic can be out of reach: publishing there waits for it."""

    reachable: asyncio.Event = field(default_factory=asyncio.Event)
    audio_sent: list[dict[str, Any]] = field(default_factory=list)
    """The frames published to the caller-audio topic."""

    async def publish(self, body: bytes, topic: str, **_: Any) -> None:
        if topic == AUDIO_IN.name:
            await self.reachable.wait()
            self.audio_sent.append(json.loads(body)["event"])


@dataclass
class Phone:
    """The caller's end: what it was played, and whether it was hung up."""

    played: bytearray = field(default_factory=bytearray)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)

    async def send_audio(self, audio: bytes) -> None:
        self.played += audio

    async def send_mark(self, name: str) -> None:
        pass

    async def clear(self) -> None:
        pass

    async def hang_up(self) -> None:
        self.hung_up.set()

    async def transfer(self, to: str) -> None:
        raise NotImplementedError

    async def show(self, activity: CallActivity) -> None:
        pass


async def live_call(
    bus: Bus, redis_url: str, tmp_path: Path, *, uplink_s: float
) -> tuple[Switchboard, LiveCall, Phone]:
    switchboard = Switchboard(
        gateway_id="gw-uplink",
        broker=cast(KafkaBroker, bus),
        registry=CallRegistry(Redis.from_url(redis_url)),
        playback_lead_s=0.0,
        recordings=Recordings(directory=tmp_path, agents=AgentDirectory()),
        agents=AgentDirectory(),
        uplink_s=uplink_s,
        bus_frame_ms=BUS_FRAME_MS,
    )
    started = CallStarted(
        transport="twilio",
        agent_id="default",
        gateway_id="gw-uplink",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
    )
    phone = Phone()
    call = await switchboard.connect("CA-uplink", started, sink=phone, leg=phone)
    return switchboard, call, phone


async def test_the_callers_frames_go_to_the_bus_gathered_and_dated_by_their_first_part(
    redis_url: str, tmp_path: Path
) -> None:
    bus = Bus()
    bus.reachable.set()
    switchboard, call, _ = await live_call(bus, redis_url, tmp_path, uplink_s=10.0)
    for seq in range(5):  # 100 ms: two whole bus frames, and half of a third
        await switchboard.caller_audio(call, bytes([seq]) * len(FRAME), received_at=seq * 0.02)
    await until(lambda: len(bus.audio_sent) == 2, what="two bus frames sent")
    await switchboard.disconnect(call.call_id, "caller hung up")

    assert [frame["seq"] for frame in bus.audio_sent] == [0, 1]
    assert [frame["received_at"] for frame in bus.audio_sent] == [0.0, 0.04]
    audio = [base64.b64decode(frame["audio"]) for frame in bus.audio_sent]
    assert audio == [bytes([0]) * 160 + bytes([1]) * 160, bytes([2]) * 160 + bytes([3]) * 160]


async def test_a_short_outage_holds_the_callers_audio_and_sends_it_in_order(
    redis_url: str, tmp_path: Path
) -> None:
    bus = Bus()
    switchboard, call, phone = await live_call(bus, redis_url, tmp_path, uplink_s=10.0)
    async with asyncio.timeout(WAIT_S):  # the socket's reader is never held up
        for _ in range(FRAMES_PER_S):  # a second of speech while the bus is out of reach
            await switchboard.caller_audio(call, FRAME, received_at=0.0)
    assert bus.audio_sent == []

    bus.reachable.set()
    bus_frames = 1000 // BUS_FRAME_MS
    await until(lambda: len(bus.audio_sent) == bus_frames, what="the held audio sent")
    assert [frame["seq"] for frame in bus.audio_sent] == list(range(bus_frames))
    assert not phone.hung_up.is_set()
    await switchboard.disconnect(call.call_id, "caller hung up")


async def test_an_outage_longer_than_the_uplink_sheds_the_call_with_the_apology(
    redis_url: str, tmp_path: Path
) -> None:
    bus = Bus()
    switchboard, call, phone = await live_call(bus, redis_url, tmp_path, uplink_s=0.2)
    async with asyncio.timeout(WAIT_S):
        for _ in range(FRAMES_PER_S):
            await switchboard.caller_audio(call, FRAME, received_at=0.0)
        await phone.hung_up.wait()

    apology = apology_in(TELEPHONE)
    assert bytes(phone.played[: len(apology)]) == apology  # heard whole before the hang-up
    assert call.ending == "bus unreachable"
    await switchboard.disconnect(call.call_id, "caller hung up")


def test_the_apology_is_speech_in_every_outbound_format() -> None:
    telephone, wideband = apology_in(TELEPHONE), apology_in(SPEECH_16K)
    seconds = TELEPHONE.duration_ms(len(telephone)) / 1000
    assert 2.0 < seconds < 8.0
    assert SPEECH_16K.duration_ms(len(wideband)) == TELEPHONE.duration_ms(len(telephone))
    loud = [abs(int(s)) for s in mulaw_to_pcm16(telephone)]
    assert max(loud) > 3000  # words, not silence
