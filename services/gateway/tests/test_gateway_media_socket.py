"""The gateway over real sockets: a fake Twilio at the wire, Redis, and FastStream's test broker."""

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from faststream.kafka import KafkaMessage, TestKafkaBroker
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voicebus_contracts import (
    TELEPHONE,
    OutboundAudioChunk,
    ServiceHeartbeat,
    StageStamps,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, HEARTBEATS, PLAYBACK, Topic, gateway_topic
from voicebus_gateway.app import Gateway, create_app
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.bus import publish
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

Captured = list[tuple[str, dict[str, Any]]]
"""(Kafka key, envelope) of each message published on a topic."""


@dataclass
class Running:
    gateway: Gateway
    base_url: str
    published: dict[str, Captured]
    registry: CallRegistry


async def serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


async def stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task


@pytest.fixture
async def analytics_url() -> AsyncIterator[str]:
    """A stand-in analytics service answering the calls API."""
    analytics = FastAPI()

    @analytics.get("/api/calls")
    async def calls(limit: int = 10) -> list[dict[str, object]]:
        return [{"call_id": "CA1", "limit": limit}]

    server, task, port = await serve(analytics)
    yield f"http://127.0.0.1:{port}"
    await stop(server, task)


@pytest.fixture
async def running(analytics_url: str, redis_url: str) -> AsyncIterator[Running]:
    settings = GatewaySettings(
        gateway_id=f"test-{uuid.uuid4().hex[:8]}",
        public_url=None,
        analytics_url=analytics_url,
        required_services=("gateway", "media"),
    )
    app = create_app(settings, BusSettings(redis_url=redis_url, heartbeat_interval_s=0.05))
    gateway: Gateway = app.state.gateway
    published: dict[str, Captured] = {}
    for topic in (CALLS, AUDIO_IN, PLAYBACK):
        published[topic.name] = capture(gateway, topic)
    redis = Redis.from_url(redis_url)
    async with TestKafkaBroker(gateway.broker):
        server, task, port = await serve(app)
        yield Running(gateway, f"127.0.0.1:{port}", published, CallRegistry(redis))
        await stop(server, task)
    await redis.aclose()


def capture(gateway: Gateway, topic: Topic) -> Captured:
    seen: Captured = []

    @gateway.broker.subscriber(topic.name, group_id="test")
    async def on_message(body: dict[str, Any], message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple), "not a batch subscriber"
        seen.append((record.key.decode(), body))

    return seen


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting")


def twilio_start(call_sid: str, *, agent_id: str = "support") -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC1",
                "streamSid": "MZ1",
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"agent_id": agent_id},
            },
            "streamSid": "MZ1",
        }
    )


def twilio_media(chunk: int, audio: bytes) -> str:
    payload = base64.b64encode(audio).decode()
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(chunk + 2),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(20 * chunk),
                "payload": payload,
            },
            "streamSid": "MZ1",
        }
    )


TWILIO_CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


async def open_call(running: Running, call_sid: str) -> ClientConnection:
    socket = await connect(f"ws://{running.base_url}/twilio/media")
    await socket.send(TWILIO_CONNECTED)
    await socket.send(twilio_start(call_sid))
    calls = running.published[CALLS.name]
    await until(lambda: any(key == call_sid for key, _ in calls))
    return socket


async def test_a_call_streams_both_ways(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    calls = running.published[CALLS.name]
    socket = await open_call(running, call_sid)

    key, started = calls[-1]
    assert key == call_sid == started["call_id"]
    assert started["event"]["type"] == "call.started"
    assert started["event"]["agent_id"] == "support"
    assert started["event"]["gateway_id"] == running.gateway.gateway_id
    route = await running.registry.lookup(call_sid)
    assert route is not None
    assert (route.gateway_id, route.agent_id, route.audio_out) == (
        running.gateway.gateway_id,
        "support",
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
    with caplog.at_level(logging.INFO, logger="voicebus_gateway.app"):
        await publish(running.gateway.broker, gateway_topic(running.gateway.gateway_id), chunk_env)
        await until(lambda: "CA-not-here: reply r1 audio dropped" in caplog.text)
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


async def test_calls_api_without_analytics_is_unavailable() -> None:
    unreachable = "http://127.0.0.1:9"
    app = create_app(GatewaySettings(analytics_url=unreachable), BusSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/api/calls/CA1")
    assert response.status_code == 503
    assert "analytics service unreachable" in response.json()["detail"]
