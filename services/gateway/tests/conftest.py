"""A gateway under test: served by uvicorn on a free port, with real Redis and FastStream's test
broker capturing what it publishes; Twilio played at the wire (signed webhooks, Media Streams)."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Response
from faststream.kafka import KafkaMessage, TestKafkaBroker
from pydantic import SecretStr
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from voicebus_contracts.topics import AUDIO_IN, CALLS, PLAYBACK, REALTIME_AUDIO_IN, Topic
from voicebus_devstack.harness import free_port
from voicebus_devstack.polling import until
from voicebus_gateway.__main__ import GatewayServer
from voicebus_gateway.app import Gateway, create_app
from voicebus_gateway.auth.redis_keys import INDEX, KEY_PREFIX, RedisApiKeys
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
Captured = list[tuple[str, dict[str, Any]]]
"""(Kafka key, envelope) of each message published on a topic."""
TWILIO_CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


@dataclass
class Running:
    gateway: Gateway
    base_url: str
    published: dict[str, Captured]
    registry: CallRegistry

    @property
    def http_url(self) -> str:
        return f"http://{self.base_url}"


async def serve(app: FastAPI, port: int = 0) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.01)
    bound: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, bound


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

    @analytics.get("/api/calls.csv")
    async def export(agent_id: str) -> Response:
        return Response(
            f"call_id,agent_id\r\nCA1,{agent_id}\r\n",
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="calls.csv"'},
        )

    @analytics.get("/api/analytics/summary")
    async def summary() -> dict[str, int]:
        return {"calls": 1}

    @analytics.get("/api/calls/{call_id}/recording")
    async def recording(call_id: str) -> Response:
        return Response(b"RIFF" + call_id.encode(), media_type="audio/wav")

    server, task, port = await serve(analytics)
    yield f"http://127.0.0.1:{port}"
    await stop(server, task)


RECORDINGS = Path(tempfile.mkdtemp(prefix="voicebus-gateway-test-recordings-"))
"""Where the gateways of these tests record their calls: not the working tree."""


def gateway_settings(analytics_url: str, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(
        **{
            "gateway_id": f"test-{uuid.uuid4().hex[:8]}",
            "port": free_port(),
            "public_url": None,
            "analytics_url": analytics_url,
            "required_services": ("gateway", "media"),
            "twilio_auth_token": SecretStr(AUTH_TOKEN),
            "recordings_dir": RECORDINGS,
            # One bus frame per frame the caller sends, so tests can follow each one;
            # test_gateway_uplink.py tests the gathering.
            "bus_frame_ms": 20,
            **overrides,
        }
    )


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    return gateway_settings(analytics_url)


@pytest.fixture
def app(settings: GatewaySettings, redis_url: str) -> FastAPI:
    """The gateway app under test (a test module may add routes to it)."""
    return create_app(settings, BusSettings(redis_url=redis_url, heartbeat_interval_s=0.05))


@pytest.fixture
async def running(
    app: FastAPI, settings: GatewaySettings, redis_url: str
) -> AsyncIterator[Running]:
    gateway: Gateway = app.state.gateway
    published: dict[str, Captured] = {}
    for topic in (CALLS, AUDIO_IN, REALTIME_AUDIO_IN, PLAYBACK):
        published[topic.name] = capture(gateway, topic)
    redis = Redis.from_url(redis_url)
    async with TestKafkaBroker(gateway.broker):
        server, task, port = await serve(app, settings.port)
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


def signature(url: str, form: dict[str, str], auth_token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it."""
    return str(RequestValidator(auth_token).compute_signature(url, form))


async def post_signed(
    client: httpx.AsyncClient, url: str, form: dict[str, str], *, signed_url: str | None = None
) -> httpx.Response:
    """POST `form` to `url` the way Twilio does, signed over `signed_url` (default: `url`)."""
    headers = {"X-Twilio-Signature": signature(signed_url or url, form)}
    return await client.post(url, data=form, headers=headers)


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """The stream URL and parameters of a <Connect><Stream> TwiML answer."""
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None
    parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return stream.attrib["url"], parameters


def voice_form(call_sid: str, *, to: str = "+15550100002") -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": "AC1",
        "From": "+15550100001",
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


async def answer_call(
    running: Running, call_sid: str, *, to: str = "+15550100002"
) -> dict[str, str]:
    """Twilio's voice webhook for an inbound call; the stream parameters of our answer."""
    async with httpx.AsyncClient() as client:
        url = f"{running.http_url}/twilio/voice"
        response = await post_signed(client, url, voice_form(call_sid, to=to))
    assert response.status_code == 200, response.text
    return stream_of(response.text)[1]


def twilio_start(call_sid: str, parameters: dict[str, str]) -> str:
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
                "customParameters": parameters,
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


async def open_call(
    running: Running, call_sid: str, *, to: str = "+15550100002"
) -> ClientConnection:
    """An inbound call answered through the signed webhook, its media stream started."""
    parameters = await answer_call(running, call_sid, to=to)
    socket = await connect(f"ws://{running.base_url}/twilio/media")
    await socket.send(TWILIO_CONNECTED)
    await socket.send(twilio_start(call_sid, parameters))
    calls = running.published[CALLS.name]
    await until(lambda: any(key == call_sid for key, _ in calls))
    return socket


@pytest.fixture
async def served(app: FastAPI, settings: GatewaySettings) -> AsyncIterator[GatewayServer]:
    """The gateway app served as `voicebus-gateway` serves it (set `should_exit` to stop it as
    SIGTERM would), with a long shutdown grace."""
    gateway: Gateway = app.state.gateway
    config = uvicorn.Config(
        app, host="127.0.0.1", port=settings.port, log_config=None, timeout_graceful_shutdown=3600
    )
    server = GatewayServer(config, gateway=gateway)
    async with TestKafkaBroker(gateway.broker):
        task = asyncio.create_task(server.serve())
        while not server.started:
            assert not task.done(), "server did not start"
            await asyncio.sleep(0.01)
        yield server
        server.should_exit = True
        await task


@dataclass
class Keys:
    """API keys made for a test in the gateways' Redis; `made` are deleted afterwards."""

    store: RedisApiKeys
    made: list[str]

    async def key(self, *scopes: Scope, name: str = "test") -> str:
        """A new key with `scopes`."""
        new = await self.store.create(name=name, scopes=scopes)
        self.made.append(new.record.id)
        return new.key


@pytest.fixture
async def api_keys(redis_url: str) -> AsyncIterator[Keys]:
    redis = Redis.from_url(redis_url)
    keys = Keys(RedisApiKeys(redis), [])
    yield keys
    for key_id in keys.made:
        await redis.delete(KEY_PREFIX + key_id)
        await redis.srem(INDEX, key_id)
    await redis.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
