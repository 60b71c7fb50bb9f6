"""A web call over a real socket: the gateway app under uvicorn, real Redis, FastStream's test
broker; and the web transport's own rules (the conversation state, a client that stops reading)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voicebus_audio import dtmf_tones, from_mono_pcm16
from voicebus_contracts import (
    MAX_FRAME_BYTES,
    SPEECH_16K,
    ClearPlayback,
    Event,
    FinalTranscript,
    OutboundAudioChunk,
    PartialTranscript,
    ReplyTextChunk,
    SpeechStarted,
    SpeechStopped,
    TransferCall,
    envelope,
)
from voicebus_contracts.topics import (
    AUDIO_IN,
    CALLS,
    PARTIAL_TRANSCRIPTS,
    PLAYBACK,
    REPLIES,
    SPEECH,
    TRANSCRIPTS,
    Topic,
    gateway_topic,
)
from voicebus_devstack.polling import until
from voicebus_gateway.app import Gateway
from voicebus_gateway.playback import PlaybackPosition
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.web import web_routes
from voicebus_gateway.web.call import CALL_PATH, WebLeg
from voicebus_gateway.web.protocol import MarkMessage
from voicebus_gateway.web.turns import TurnTaking
from voicebus_runtime.bus import publish

from .conftest import Running

RECEIVE_TIMEOUT_S = 5.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""
QUIET_PREFIX = "/quiet"
"""Where the fixture mounts a web call route that gives up on a silent caller at once."""
QUIET_TIMEOUT_S = 0.3
FRAME = 640
"""20 ms of PCM16 at 16 kHz."""
Received = dict[str, Any] | bytes
"""A JSON message from the gateway, or a binary frame of agent audio."""


@pytest.fixture
def app(app: FastAPI, settings: GatewaySettings) -> FastAPI:
    """conftest's gateway app, also serving web calls at QUIET_PREFIX with a short idle
    timeout."""
    gateway: Gateway = app.state.gateway
    quiet = settings.model_copy(update={"web_idle_timeout_s": QUIET_TIMEOUT_S})
    app.include_router(
        web_routes(switchboard=gateway.switchboard, settings=quiet, tokens=None),
        prefix=QUIET_PREFIX,
    )
    return app


async def receive(socket: ClientConnection) -> Received:
    raw = await asyncio.wait_for(socket.recv(), RECEIVE_TIMEOUT_S)
    if isinstance(raw, bytes):
        return raw
    message: dict[str, Any] = json.loads(raw)
    return message


async def receive_until(socket: ClientConnection, kind: str) -> list[Received]:
    """What the gateway sends, up to and including the first message of type `kind`."""
    received: list[Received] = []
    while not received or isinstance(received[-1], bytes) or received[-1]["type"] != kind:
        received.append(await receive(socket))
    return received


def kinds(received: list[Received]) -> list[str]:
    """Each message's type, `audio` for a binary frame."""
    return ["audio" if isinstance(m, bytes) else m["type"] for m in received]


def json_messages(received: list[Received]) -> list[dict[str, Any]]:
    return [m for m in received if not isinstance(m, bytes)]


async def open_web_call(
    running: Running, query: str = "", *, path: str = CALL_PATH
) -> tuple[ClientConnection, dict[str, Any]]:
    """A web call whose start is announced on the bus; the socket and its `call.started`."""
    socket = await connect(f"ws://{running.base_url}{path}{query}")
    started = await receive(socket)
    assert isinstance(started, dict)
    assert started["type"] == "call.started", started
    assert await receive(socket) == {"type": "state", "state": "listening"}
    calls = running.published[CALLS.name]
    await until(lambda: any(key == started["call_id"] for key, _ in calls))
    return socket, started


async def to_gateway(
    running: Running, event: Event, call_id: str, topic: Topic | None = None
) -> None:
    """Publish `event` of `call_id` as its producer would (default: on the gateway's topic)."""
    target = topic or gateway_topic(running.gateway.gateway_id)
    await publish(running.gateway.broker, target, envelope(event, call_id=call_id, producer="test"))


def reply_chunk(audio: bytes, *, reply_id: str = "r1", seq: int = 0) -> OutboundAudioChunk:
    return OutboundAudioChunk(
        reply_id=reply_id, sentence=0, seq=seq, audio=audio, format=SPEECH_16K, last=True
    )


def events_of(running: Running, call_id: str, kind: str) -> list[dict[str, Any]]:
    calls = running.published[CALLS.name]
    return [env["event"] for key, env in calls if key == call_id and env["event"]["type"] == kind]


async def test_a_web_call_starts_and_streams_the_callers_audio(running: Running) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    assert call_id.startswith("web-")
    assert started["agent_id"] == "default"
    assert started["audio"] == {"encoding": "pcm16", "sample_rate": 16000, "channels": 1}
    assert started["max_frame_bytes"] == MAX_FRAME_BYTES

    [announced] = events_of(running, call_id, "call.started")
    assert announced["transport"] == "web"
    assert announced["direction"] == "inbound"
    assert announced["gateway_id"] == running.gateway.gateway_id
    assert announced["audio_in"] == announced["audio_out"] == started["audio"]
    route = await running.registry.lookup(call_id)
    assert route is not None
    assert (route.gateway_id, route.transport, route.audio_out) == (
        running.gateway.gateway_id,
        "web",
        SPEECH_16K,
    )

    caller_audio = [bytes([n, 0]) * (FRAME // 2) for n in range(1, 4)]
    for frame in caller_audio:
        await socket.send(frame)
    frames = running.published[AUDIO_IN.name]
    await until(lambda: len(frames) == 3)
    assert {key for key, _ in frames} == {call_id}
    assert [env["event"]["seq"] for _, env in frames] == [0, 1, 2]
    assert [base64.b64decode(env["event"]["audio"]) for _, env in frames] == caller_audio
    assert {json.dumps(env["event"]["format"]) for _, env in frames} == {
        json.dumps(started["audio"])
    }
    await socket.close()


async def test_the_caller_chooses_the_agent(running: Running) -> None:
    socket, started = await open_web_call(running, "?agent_id=sales")
    assert started["agent_id"] == "sales"
    [announced] = events_of(running, started["call_id"], "call.started")
    assert announced["agent_id"] == "sales"
    await socket.close()


async def test_an_unusable_agent_id_is_refused_with_a_reason(running: Running) -> None:
    async with connect(f"ws://{running.base_url}{CALL_PATH}?agent_id={'a' * 129}") as socket:
        error = await receive(socket)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
    assert isinstance(error, dict)
    assert error["type"] == "error"
    assert error["code"] == "invalid_request"
    assert "agent_id" in error["message"]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert running.published[CALLS.name] == []


async def test_bad_frames_and_messages_are_answered_with_errors_and_the_call_goes_on(
    running: Running,
) -> None:
    socket, started = await open_web_call(running)
    bad_frames = [b"", b"\x01" * (FRAME + 1), b"\x00" * (MAX_FRAME_BYTES + 2)]
    bad_messages = [
        "{not json",
        "[1, 2]",
        json.dumps({"type": "dance"}),
        json.dumps({"type": "dtmf", "digit": "x"}),
        json.dumps({"type": "played"}),
        json.dumps({"type": "played", "mark": "m" * 5000}),
    ]
    for frame in bad_frames:
        await socket.send(frame)
    for text in bad_messages:
        await socket.send(text)
    good = b"\x10\x00" * (FRAME // 2)
    await socket.send(good)

    errors = [await receive(socket) for _ in range(len(bad_frames) + len(bad_messages))]
    assert all(isinstance(e, dict) and e["type"] == "error" for e in errors), errors
    messages = json_messages(errors)
    assert [e["code"] for e in messages] == ["invalid_audio"] * 3 + ["invalid_message"] * 6
    assert "empty" in messages[0]["message"]
    assert "whole 2-byte samples" in messages[1]["message"]
    assert str(MAX_FRAME_BYTES) in messages[2]["message"]
    assert "malformed JSON" in messages[3]["message"]
    assert "expected a JSON object" in messages[4]["message"]
    assert "'dance'" in messages[5]["message"]
    assert "digit" in messages[6]["message"]
    assert "mark" in messages[7]["message"]
    assert "exceeds" in messages[8]["message"]

    frames = running.published[AUDIO_IN.name]
    await until(lambda: len(frames) == 1)
    assert base64.b64decode(frames[0][1]["event"]["audio"]) == good
    assert events_of(running, started["call_id"], "call.ended") == []
    await socket.close()


async def test_reply_audio_plays_as_frames_then_a_mark_the_client_reports_played(
    running: Running,
) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    reply_audio = bytes(range(256)) * 6  # 1536 bytes: two whole 20 ms frames and a shorter one
    await to_gateway(running, reply_chunk(reply_audio), call_id)

    received = await receive_until(socket, "mark")
    assert kinds(received) == ["audio", "state", "audio", "audio", "mark"]
    assert received[1] == {"type": "state", "state": "agent_speaking"}
    played = [m for m in received if isinstance(m, bytes)]
    assert [len(frame) for frame in played] == [FRAME, FRAME, 256]
    assert b"".join(played) == reply_audio
    mark = received[-1]
    assert isinstance(mark, dict)
    assert mark["name"] == "r1:0:0"

    playback = running.published[PLAYBACK.name]
    await until(lambda: len(playback) == 1)
    assert playback[0][0] == call_id
    assert playback[0][1]["event"] == {"type": "playback.started", "reply_id": "r1"}

    await socket.send(json.dumps({"type": "played", "mark": mark["name"]}))
    assert await receive(socket) == {"type": "state", "state": "listening"}
    live = running.gateway.switchboard.live(call_id)
    assert live is not None
    assert live.playback.heard == PlaybackPosition("r1", 0, 0)
    await socket.close()


async def test_what_is_heard_and_said_reaches_the_client_with_the_conversation_state(
    running: Running,
) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    turn = f"{call_id}:t1200"
    reply = f"{turn}:reply"

    await to_gateway(running, SpeechStarted(turn_id=turn, audio_offset_ms=1200), call_id, SPEECH)
    assert await receive_until(socket, "state") == [
        {"type": "speech.started", "turn_id": turn},
        {"type": "state", "state": "user_speaking"},
    ]
    so_far = PartialTranscript(turn_id=turn, text="Book a", audio_ms=1000)
    await to_gateway(running, so_far, call_id, PARTIAL_TRANSCRIPTS)
    assert await receive(socket) == {
        "type": "transcript.partial",
        "turn_id": turn,
        "text": "Book a",
    }
    await to_gateway(running, SpeechStopped(turn_id=turn, audio_offset_ms=2400), call_id, SPEECH)
    assert await receive_until(socket, "state") == [
        {"type": "speech.stopped", "turn_id": turn},
        {"type": "state", "state": "thinking"},
    ]
    heard = FinalTranscript(turn_id=turn, text="Book a table.", language="en")
    await to_gateway(running, heard, call_id, TRANSCRIPTS)
    assert await receive(socket) == {
        "type": "transcript.final",
        "turn_id": turn,
        "text": "Book a table.",
    }
    for seq, (text, last) in enumerate([("Sure, for how many?", False), ("", True)]):
        said = ReplyTextChunk(reply_id=reply, in_reply_to=turn, seq=seq, text=text, last=last)
        await to_gateway(running, said, call_id, REPLIES)
        assert await receive(socket) == {
            "type": "reply.text",
            "reply_id": reply,
            "in_reply_to": turn,
            "seq": seq,
            "text": text,
            "last": last,
        }

    # Still thinking until the reply is heard; then the agent speaks until the client played it.
    await to_gateway(running, reply_chunk(bytes(FRAME), reply_id=reply), call_id)
    received = await receive_until(socket, "mark")
    assert json_messages(received) == [
        {"type": "state", "state": "agent_speaking"},
        {"type": "mark", "name": f"{reply}:0:0"},
    ]
    await socket.send(json.dumps({"type": "played", "mark": f"{reply}:0:0"}))
    assert await receive(socket) == {"type": "state", "state": "listening"}
    await socket.close()


async def test_a_clear_reaches_the_client_and_the_agent_stops_speaking(running: Running) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    await to_gateway(running, reply_chunk(bytes(32_000 * 10)), call_id)  # 10 s
    assert kinds(await receive_until(socket, "state")) == ["audio", "state"]

    await to_gateway(running, ClearPlayback(), call_id)
    received = await receive_until(socket, "clear")
    assert len(received) < 50, "paced in real time: far less than 10 s went out"
    assert await receive(socket) == {"type": "state", "state": "listening"}
    await socket.close()


async def test_a_key_pressed_by_the_caller_is_an_event(running: Running) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    for digit in ("5", "x", "#"):  # "x" is no key: refused, the call goes on
        await socket.send(json.dumps({"type": "dtmf", "digit": digit}))
    error = await receive(socket)
    assert isinstance(error, dict)
    assert error["code"] == "invalid_message"
    await until(lambda: len(events_of(running, call_id, "call.dtmf")) == 2)
    assert [e["digit"] for e in events_of(running, call_id, "call.dtmf")] == ["5", "#"]
    await socket.close()


async def test_keys_sent_through_the_api_are_played_as_16k_tones(running: Running) -> None:
    socket, started = await open_web_call(running)
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(f"/api/calls/{started['call_id']}/dtmf", json={"digits": "1#"})
    assert response.status_code == 202
    expected = from_mono_pcm16(dtmf_tones("1#", sample_rate=16_000), SPEECH_16K)
    played = b""
    while len(played) < len(expected):
        received = await receive(socket)
        if isinstance(received, bytes):
            played += received
        else:
            assert received["type"] == "state", "tones are not a reply: no marks"
    assert played == expected
    await socket.close()


async def test_the_caller_hanging_up_ends_the_call(running: Running) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    await socket.send(json.dumps({"type": "hangup"}))
    assert await receive(socket) == {"type": "call.ended", "reason": "caller hung up"}
    with pytest.raises(ConnectionClosed) as closed:
        await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000

    await until(lambda: bool(events_of(running, call_id, "call.ended")))
    assert events_of(running, call_id, "call.ended") == [
        {"type": "call.ended", "reason": "caller hung up"}
    ]
    assert await running.registry.lookup(call_id) is None


async def test_a_dropped_socket_ends_the_call(running: Running) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    await socket.close()
    await until(lambda: bool(events_of(running, call_id, "call.ended")))
    assert events_of(running, call_id, "call.ended")[0]["reason"] == "socket closed"
    assert await running.registry.lookup(call_id) is None


async def test_hang_up_through_the_api_tells_the_client_and_closes_normally(
    running: Running,
) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(
            f"/api/calls/{call_id}/hangup", json={"reason": "the agent said goodbye"}
        )
    assert response.status_code == 202
    assert await receive(socket) == {"type": "call.ended", "reason": "the agent said goodbye"}
    with pytest.raises(ConnectionClosed) as closed:
        await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
    assert closed.value.rcvd.reason == "the agent said goodbye"

    await until(lambda: bool(events_of(running, call_id, "call.ended")))
    assert events_of(running, call_id, "call.ended")[0]["reason"] == "the agent said goodbye"
    assert await running.registry.lookup(call_id) is None


async def test_a_web_call_cannot_be_transferred_and_stays_up(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    socket, started = await open_web_call(running)
    call_id = started["call_id"]
    with caplog.at_level(logging.WARNING):
        await to_gateway(running, TransferCall(to="+14155550100"), call_id)
        await until(lambda: "transfer to +14155550100 refused" in caplog.text)
    assert "a web call cannot be transferred" in caplog.text
    await socket.send(b"\x00" * FRAME)
    await until(lambda: len(running.published[AUDIO_IN.name]) == 1)
    assert await running.registry.lookup(call_id) is not None
    await socket.close()


async def test_a_silent_client_is_ended(running: Running) -> None:
    socket, started = await open_web_call(running, path=f"{QUIET_PREFIX}{CALL_PATH}")
    ended = await receive(socket)
    assert isinstance(ended, dict)
    assert ended["type"] == "call.ended"
    assert "nothing from the caller" in ended["reason"]
    with pytest.raises(ConnectionClosed) as closed:
        await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    await until(lambda: bool(events_of(running, started["call_id"], "call.ended")))


# --- a client that stops reading ---------------------------------------------------------


class StalledSocket:
    """The server's end of a socket whose client stopped reading: a send never completes."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed_with: int | None = None

    async def send_text(self, _: str) -> None:
        await self._stall()

    async def send_bytes(self, _: bytes) -> None:
        await self._stall()

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    async def _stall(self) -> None:
        self.sent += 1
        await asyncio.Event().wait()


async def test_a_client_that_stops_reading_is_ended_not_buffered_for() -> None:
    socket = StalledSocket()
    leg = WebLeg(cast(WebSocket, socket), call_id="web-stalled", outbox_limit=8)
    leg.start()
    await leg.send_audio(bytes(FRAME))
    await until(lambda: socket.sent == 1)  # the writer is stuck on the first frame
    for n in range(8):
        leg.send(MarkMessage(name=f"r1:0:{n}"))
        await leg.send_audio(bytes(FRAME))
    ending = await asyncio.wait_for(leg.ended(), RECEIVE_TIMEOUT_S)
    assert ending.reason == "the client stopped reading"
    assert not ending.tell_client, "a client that does not read is not sent call.ended"
    await leg.close(ending, ending.reason)
    assert socket.closed_with == 1008
    assert socket.sent == 1


# --- the conversation state, on its own ----------------------------------------------------


def test_the_state_follows_a_turn_and_its_reply_whichever_reaches_the_gateway_first() -> None:
    for text_first in (True, False):
        turns = TurnTaking()
        assert turns.state == "listening"
        assert turns.saw(SpeechStarted(turn_id="t1", audio_offset_ms=0)) == "user_speaking"
        assert turns.saw(SpeechStopped(turn_id="t1", audio_offset_ms=900)) == "thinking"
        answer = ReplyTextChunk(reply_id="t1:reply", in_reply_to="t1", seq=0, text="Hi", last=False)
        if text_first:
            assert turns.saw(answer) is None
        assert turns.audio_sent() == "agent_speaking"
        assert turns.mark_sent("t1:reply:0:0") is None
        if not text_first:
            assert turns.saw(answer) is None
        assert turns.played("t1:reply:0:0") == "listening", f"text first: {text_first}"


def test_an_old_reply_playing_on_does_not_end_the_wait_for_the_new_one() -> None:
    turns = TurnTaking()
    turns.audio_sent()
    turns.mark_sent("greeting:0:0")
    turns.saw(SpeechStarted(turn_id="t1", audio_offset_ms=0))
    turns.saw(SpeechStopped(turn_id="t1", audio_offset_ms=900))
    assert turns.state == "agent_speaking"  # the greeting still plays
    assert turns.played("greeting:0:0") == "thinking"
    assert (
        turns.saw(ReplyTextChunk(reply_id="t1:reply", in_reply_to="t1", seq=0, text="", last=True))
        is None
    )


def test_a_turn_heard_as_nothing_gets_no_reply_and_is_not_waited_for() -> None:
    turns = TurnTaking()
    turns.saw(SpeechStarted(turn_id="t1", audio_offset_ms=0))
    turns.saw(SpeechStopped(turn_id="t1", audio_offset_ms=300))
    assert turns.saw(FinalTranscript(turn_id="t0", text="")) is None, "another turn's"
    assert turns.saw(FinalTranscript(turn_id="t1", text=" ")) == "listening"


def test_audio_after_the_last_mark_keeps_the_agent_speaking_and_a_clear_stops_it() -> None:
    turns = TurnTaking()
    turns.audio_sent()
    turns.mark_sent("r1:0:0")
    assert turns.audio_sent() is None
    assert turns.played("r1:0:0") is None, "audio sent after that mark has not played"
    assert turns.played("unknown") is None
    assert turns.cleared() == "listening"
