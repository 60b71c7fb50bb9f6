"""Call control through the API and the bus: keys in and out, hang-up, transfer, clearing."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voicebus_audio import dtmf_tones, from_mono_pcm16
from voicebus_contracts import (
    TELEPHONE,
    CallCommand,
    CancelReply,
    ClearPlayback,
    HangUp,
    OutboundAudioChunk,
    PausePlayback,
    ResumePlayback,
    envelope,
)
from voicebus_contracts.topics import CALLS, PLAYBACK, gateway_topic
from voicebus_devstack.polling import until
from voicebus_runtime.bus import publish

from .conftest import Running, open_call


async def drain(socket: ClientConnection) -> None:
    """Read everything the gateway sends, until it closes the socket."""
    while True:
        await socket.recv()


async def test_a_key_pressed_by_the_caller_is_an_event(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    for digit in ("5", "x", "#"):  # "x" is no key: skipped, the call goes on
        await socket.send(
            json.dumps(
                {
                    "event": "dtmf",
                    "streamSid": "MZ1",
                    "sequenceNumber": "5",
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )
        )
    calls = running.published[CALLS.name]
    await until(lambda: sum(env["event"]["type"] == "call.dtmf" for _, env in calls) == 2)
    pressed = [env["event"]["digit"] for key, env in calls if env["event"]["type"] == "call.dtmf"]
    assert pressed == ["5", "#"]
    assert {key for key, _ in calls} == {call_sid}
    await socket.close()


async def test_hang_up_through_the_api_ends_the_stream_and_the_call(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(
            f"/api/calls/{call_sid}/hangup", json={"reason": "the caller asked to stop"}
        )
    assert response.status_code == 202
    assert response.json() == {"call_id": call_sid, "accepted": "control.hang_up"}
    with pytest.raises(ConnectionClosed) as closed:
        await drain(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000

    calls = running.published[CALLS.name]
    await until(lambda: calls[-1][1]["event"]["type"] == "call.ended")
    assert calls[-1][1]["event"]["reason"] == "the caller asked to stop"
    assert await running.registry.lookup(call_sid) is None


async def test_a_hang_up_after_a_reply_waits_until_the_caller_heard_it(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    topic = gateway_topic(running.gateway.gateway_id)
    broker = running.gateway.broker
    # The agent's hang-up reaches the gateway before the goodbye's audio, which TTS makes.
    goodbye = HangUp(reason="the agent said goodbye", after_reply="bye")
    await publish(broker, topic, envelope(goodbye, call_id=call_sid, producer="agent"))
    for seq, last in ((0, False), (1, True)):
        chunk = OutboundAudioChunk(
            reply_id="bye", sentence=0, seq=seq, audio=b"\x7f" * 800, format=TELEPHONE, last=last
        )
        await publish(broker, topic, envelope(chunk, call_id=call_sid, producer="tts"))
    marks: list[str] = []
    while len(marks) < 2:
        message = json.loads(await socket.recv())
        if message["event"] == "mark":
            marks.append(message["mark"]["name"])
    await asyncio.sleep(0.3)
    assert running.gateway.switchboard.live(call_sid) is not None, "hung up before heard"

    for number, name in enumerate(marks):  # the caller's end played the goodbye
        echo = {"event": "mark", "streamSid": "MZ1", "sequenceNumber": str(9 + number)}
        await socket.send(json.dumps(echo | {"mark": {"name": name}}))
    with pytest.raises(ConnectionClosed):
        await drain(socket)
    calls = running.published[CALLS.name]
    await until(lambda: calls[-1][1]["event"]["type"] == "call.ended")
    assert calls[-1][1]["event"]["reason"] == "the agent said goodbye"


async def test_keys_sent_through_the_api_are_played_as_tones(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(f"/api/calls/{call_sid}/dtmf", json={"digits": "12#"})
        assert response.status_code == 202
        expected = from_mono_pcm16(dtmf_tones("12#", sample_rate=8000), TELEPHONE)
        played = b""
        while len(played) < len(expected):
            message = json.loads(await socket.recv())
            assert message["event"] == "media", "tones are not a reply: no marks"
            played += base64.b64decode(message["media"]["payload"])
        assert played == expected

        response = await client.post(f"/api/calls/{call_sid}/dtmf", json={"digits": "12;"})
        assert response.status_code == 422
    playback = running.published["voicebus.playback"]
    assert playback == [], "tones are not reported as a reply's playback"
    await socket.close()


async def test_clear_drops_what_is_queued_and_tells_twilio(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    topic = gateway_topic(running.gateway.gateway_id)
    ten_seconds = OutboundAudioChunk(
        reply_id="r1", sentence=0, seq=0, audio=b"\x7f" * 80_000, format=TELEPHONE, last=True
    )
    await publish(
        running.gateway.broker, topic, envelope(ten_seconds, call_id=call_sid, producer="tts")
    )
    assert json.loads(await socket.recv())["event"] == "media"
    await publish(
        running.gateway.broker, topic, envelope(ClearPlayback(), call_id=call_sid, producer="media")
    )
    events = []
    while "clear" not in events:
        events.append(json.loads(await socket.recv())["event"])
    # Paced at real time with a 100 ms lead: far less than the 10 s queued went out.
    assert events.count("media") < 50
    await socket.close()


async def test_a_transfer_twilio_cannot_make_leaves_the_call_up(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    with caplog.at_level(logging.WARNING):
        async with httpx.AsyncClient(base_url=running.http_url) as client:
            response = await client.post(
                f"/api/calls/{call_sid}/transfer", json={"to": "+14155550100"}
            )
        assert response.status_code == 202
        await until(lambda: "transfer to +14155550100 refused" in caplog.text)
    assert "TWILIO_ACCOUNT_SID is not set" in caplog.text
    assert await running.registry.lookup(call_sid) is not None
    await socket.close()


async def test_control_of_an_unknown_call_or_bad_input_is_refused(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post("/api/calls/CA-nowhere/hangup")
        assert response.status_code == 404
        assert response.json() == {"detail": "call CA-nowhere is not live"}
        response = await client.post("/api/calls/CA-nowhere/transfer", json={"to": "555"})
        assert response.status_code == 422


async def test_placing_a_call_without_twilio_credentials_names_the_setting(
    running: Running,
) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post("/api/calls", json={"to": "+14155550100"})
        assert response.status_code == 503
        assert "TWILIO_ACCOUNT_SID" in response.json()["detail"]
        response = await client.post("/api/calls", json={"to": "4155550100"})
        assert response.status_code == 422
        assert "is not an E.164 phone number" in response.json()["detail"][0]["msg"]


async def test_barge_in_pauses_then_cancels_or_resumes_a_reply(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    topic = gateway_topic(running.gateway.gateway_id)
    broker = running.gateway.broker

    async def command(event: CallCommand) -> None:
        await publish(broker, topic, envelope(event, call_id=call_sid, producer="test"))

    playback = running.published[PLAYBACK.name]

    def pauses() -> list[dict[str, object]]:
        return [env["event"] for _, env in playback if env["event"]["type"] == "playback.paused"]

    for reply_id in ("r1", "r2"):
        long_reply = OutboundAudioChunk(
            reply_id=reply_id,
            sentence=0,
            seq=0,
            audio=b"\x7f" * 40_000,
            format=TELEPHONE,
            last=True,
        )
        await publish(broker, topic, envelope(long_reply, call_id=call_sid, producer="tts"))
        assert json.loads(await socket.recv())["event"] == "media"
        await command(PausePlayback(turn_id=f"{call_sid}:t-{reply_id}"))
        while json.loads(await socket.recv())["event"] != "clear":
            pass
        await until(lambda: bool(pauses()))
        assert pauses()[-1] == {
            "type": "playback.paused",
            "reply_id": reply_id,
            "turn_id": f"{call_sid}:t-{reply_id}",
            "sentence": 0,
            "fraction": 0.0,
        }
        playback.clear()
        if reply_id == "r1":
            await command(ResumePlayback())  # a backchannel: the same reply carries on
            assert json.loads(await socket.recv())["event"] == "media"
            await command(ClearPlayback())
            while json.loads(await socket.recv())["event"] != "clear":
                pass
        else:
            await command(CancelReply(reply_id="r2"))  # an interruption: the reply is gone
            late = OutboundAudioChunk(
                reply_id="r2", sentence=1, seq=0, audio=bytes(160), format=TELEPHONE, last=True
            )
            await publish(broker, topic, envelope(late, call_id=call_sid, producer="tts"))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await socket.recv()
    await socket.close()
