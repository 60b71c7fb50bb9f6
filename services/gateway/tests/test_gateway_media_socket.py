"""A Twilio call over real sockets: signed webhook, media stream, Redis, FastStream's test
broker."""

import asyncio
import base64
import json
import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voicebus_contracts import (
    TELEPHONE,
    OutboundAudioChunk,
    ServiceHeartbeat,
    StageStamps,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, HEARTBEATS, PLAYBACK, gateway_topic
from voicebus_devstack.polling import until
from voicebus_gateway.app import create_app
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings

from .conftest import TWILIO_CONNECTED, Running, open_call, serve, stop, twilio_media


async def test_a_call_streams_both_ways(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    calls = running.published[CALLS.name]
    socket = await open_call(running, call_sid)

    key, started = calls[-1]
    assert key == call_sid == started["call_id"]
    assert started["event"]["type"] == "call.started"
    assert started["event"]["agent_id"] == "default"
    assert started["event"]["gateway_id"] == running.gateway.gateway_id
    route = await running.registry.lookup(call_sid)
    assert route is not None
    assert (route.gateway_id, route.agent_id, route.audio_out) == (
        running.gateway.gateway_id,
        "default",
        TELEPHONE,
    )

    # The caller speaks; a broken message in between is skipped without losing the call.
    caller_audio = [bytes([n]) * 160 for n in range(1, 4)]
    await socket.send(twilio_media(1, caller_audio[0]))
    await socket.send("{not json")
    for chunk, audio in enumerate(caller_audio[1:], start=2):
        await socket.send(twilio_media(chunk, audio))
    frames = running.published[AUDIO_IN.name]
    await until(lambda: len(frames) == 3)
    assert {key for key, _ in frames} == {call_sid}
    assert [env["event"]["seq"] for _, env in frames] == [0, 1, 2]
    assert [base64.b64decode(env["event"]["audio"]) for _, env in frames] == caller_audio

    # The agent answers: its audio comes back as 20 ms media messages, then a mark.
    reply_audio = bytes(range(160)) * 3
    chunk_env = envelope(
        OutboundAudioChunk(
            reply_id="r1", sentence=0, seq=0, audio=reply_audio, format=TELEPHONE, last=True
        ),
        call_id=call_sid,
        producer="tts",
        stamps=StageStamps(tts_first_audio=123.0),
    )
    await publish(running.gateway.broker, gateway_topic(running.gateway.gateway_id), chunk_env)
    received = [json.loads(await socket.recv()) for _ in range(4)]
    assert [message["event"] for message in received] == ["media", "media", "media", "mark"]
    assert {message["streamSid"] for message in received} == {"MZ1"}
    played = [base64.b64decode(message["media"]["payload"]) for message in received[:3]]
    assert played == [reply_audio[:160], reply_audio[160:320], reply_audio[320:]]

    playback = running.published[PLAYBACK.name]
    await until(lambda: len(playback) == 1)
    key, playback_started = playback[0]
    assert key == call_sid
    assert playback_started["event"] == {"type": "playback.started", "reply_id": "r1"}
    assert playback_started["stamps"]["tts_first_audio"] == 123.0
    assert playback_started["stamps"]["playback_started"] is not None

    # Twilio echoes the mark, then the caller hangs up.
    mark_name = received[3]["mark"]["name"]
    await socket.send(
        json.dumps(
            {
                "event": "mark",
                "streamSid": "MZ1",
                "sequenceNumber": "6",
                "mark": {"name": mark_name},
            }
        )
    )
    await socket.send(
        json.dumps(
            {
                "event": "stop",
                "sequenceNumber": "7",
                "streamSid": "MZ1",
                "stop": {"accountSid": "AC1", "callSid": call_sid},
            }
        )
    )
    await until(lambda: len(calls) >= 2 and calls[-1][1]["event"]["type"] == "call.ended")
    key, ended = calls[-1]
    assert key == call_sid
    assert ended["event"]["reason"] == "stream stopped"
    assert await running.registry.lookup(call_sid) is None
    await socket.close()


async def test_a_dropped_socket_ends_the_call(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    socket = await open_call(running, call_sid)
    await socket.close()

    calls = running.published[CALLS.name]
    await until(lambda: calls[-1][1]["event"]["type"] == "call.ended")
    assert calls[-1][0] == call_sid
    assert calls[-1][1]["event"]["reason"] == "socket closed"
    assert await running.registry.lookup(call_sid) is None


async def test_reply_audio_for_an_unknown_call_is_dropped(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    chunk_env = envelope(
        OutboundAudioChunk(
            reply_id="r1", sentence=0, seq=0, audio=bytes(160), format=TELEPHONE, last=True
        ),
        call_id="CA-not-here",
        producer="tts",
    )
    with caplog.at_level(logging.INFO, logger="voicebus_gateway.switchboard"):
        await publish(running.gateway.broker, gateway_topic(running.gateway.gateway_id), chunk_env)
        await until(lambda: "CA-not-here: audio.out dropped" in caplog.text)
    await asyncio.sleep(0.1)  # a playback report, were there one, would have come by now
    assert running.published[PLAYBACK.name] == []


async def test_a_socket_that_does_not_start_is_closed_with_a_reason(running: Running) -> None:
    async with connect(f"ws://{running.base_url}/twilio/media") as socket:
        await socket.send(TWILIO_CONNECTED)
        await socket.send(twilio_media(1, bytes(160)))
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "start" in closed.value.rcvd.reason
    assert running.published[CALLS.name] == []


async def test_healthz_needs_a_beat_from_every_required_service(running: Running) -> None:
    async with httpx.AsyncClient(base_url=f"http://{running.base_url}") as client:
        # The gateway's own beat comes back through the bus; media has not beaten yet.
        await until(lambda: "gateway" not in running.gateway.liveness.missing())
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "missing": ["media"]}

        beat = ServiceHeartbeat(service="media", instance="media-1")
        await publish(
            running.gateway.broker, HEARTBEATS, envelope(beat, call_id="media-1", producer="media")
        )
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "services": {"gateway": "up", "media": "up"}}


async def test_calls_api_is_answered_by_analytics(running: Running) -> None:
    async with httpx.AsyncClient(base_url=f"http://{running.base_url}") as client:
        response = await client.get("/api/calls", params={"limit": 3})
        assert response.status_code == 200
        assert response.json() == [{"call_id": "CA1", "limit": 3}]

        response = await client.get("/api/calls/CA-unknown")
        assert response.status_code == 404

        export = await client.get("/api/calls.csv", params={"agent_id": "sales"})
        assert export.text == "call_id,agent_id\r\nCA1,sales\r\n"
        assert export.headers["content-type"].startswith("text/csv")
        assert export.headers["content-disposition"] == 'attachment; filename="calls.csv"'
        assert (await client.get("/api/analytics/summary")).json() == {"calls": 1}
        recording = await client.get("/api/calls/CA7/recording")
        assert (recording.content, recording.headers["content-type"]) == (b"RIFFCA7", "audio/wav")


async def test_calls_api_without_analytics_is_unavailable() -> None:
    unreachable = "http://127.0.0.1:9"
    app = create_app(GatewaySettings(analytics_url=unreachable), BusSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/api/calls/CA1")
    assert response.status_code == 503
    assert "the analytics service unreachable" in response.json()["detail"]


async def test_the_agents_api_is_answered_by_the_agent_service() -> None:
    agent_service = FastAPI()
    received: list[tuple[str, str, bytes]] = []

    @agent_service.api_route("/api/agents", methods=["GET", "POST"])
    @agent_service.api_route("/api/agents/{agent_id}", methods=["GET", "PUT", "DELETE"])
    async def agents(request: Request) -> JSONResponse:
        received.append((request.method, request.url.path, await request.body()))
        return JSONResponse({"detail": "taken"}, status_code=409)

    server, task, port = await serve(agent_service)
    settings = GatewaySettings(agents_url=f"http://127.0.0.1:{port}")
    transport = httpx.ASGITransport(app=create_app(settings, BusSettings()))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            created = await client.post("/api/agents", json={"agent_id": "sales"})
            replaced = await client.put("/api/agents/sales", json={"agent_id": "sales"})
            deleted = await client.delete("/api/agents/sales")
    finally:
        await stop(server, task)

    assert [r.status_code for r in (created, replaced, deleted)] == [409, 409, 409]
    assert created.json() == {"detail": "taken"}
    assert [(method, path) for method, path, _ in received] == [
        ("POST", "/api/agents"),
        ("PUT", "/api/agents/sales"),
        ("DELETE", "/api/agents/sales"),
    ]
    assert json.loads(received[0][2]) == {"agent_id": "sales"}


async def test_the_agents_api_without_the_agent_service_is_unavailable() -> None:
    app = create_app(GatewaySettings(agents_url="http://127.0.0.1:9"), BusSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/api/agents")
    assert response.status_code == 503
    assert "the agent service unreachable" in response.json()["detail"]
