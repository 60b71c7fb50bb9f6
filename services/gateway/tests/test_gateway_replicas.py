"""Two gateway processes on one real broker and Redis: each call's audio reaches the replica
holding its socket, and a replica that dies has its calls ended by the other."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from voicebus_contracts import TELEPHONE, OutboundAudioChunk, envelope
from voicebus_contracts.topics import ALL_TOPICS, CALLS, gateway_topic
from voicebus_devstack.harness import free_port
from voicebus_runtime.bus import ensure_topics, publish
from voicebus_runtime.registry import CallRegistry

from .conftest import AUTH_TOKEN, TWILIO_CONNECTED, post_signed, stream_of, twilio_start, voice_form

pytestmark = pytest.mark.timeout(120)

LEASE_S = 1.5


@dataclass
class Replica:
    gateway_id: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def start_replica(
    gateway_id: str, *, kafka_bootstrap: str, redis_url: str, log_dir: Path
) -> Replica:
    port = free_port()
    env = {
        **os.environ,
        "VOICEBUS_GATEWAY_ID": gateway_id,
        "VOICEBUS_INSTANCE_ID": gateway_id,
        "VOICEBUS_PORT": str(port),
        "VOICEBUS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "VOICEBUS_REDIS_URL": redis_url,
        "VOICEBUS_KAFKA_FETCH_MAX_WAIT_MS": "20",
        "VOICEBUS_GATEWAY_REQUIRED_SERVICES": "gateway",
        "VOICEBUS_GATEWAY_REPLICA_LEASE_S": str(LEASE_S),
        "VOICEBUS_HEARTBEAT_INTERVAL_S": "0.2",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    log_path = log_dir / f"{gateway_id}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voicebus_gateway"], env=env, stdout=log, stderr=log
        )
    return Replica(gateway_id, f"http://127.0.0.1:{port}", process, log_path)


def wait_healthy(replica: Replica) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert replica.process.poll() is None, f"{replica.gateway_id} exited"
        try:
            if httpx.get(f"{replica.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{replica.gateway_id} not healthy in time")


@pytest.fixture
def replicas(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[list[Replica]]:
    run = uuid.uuid4().hex[:6]
    started = [
        start_replica(
            f"gw-{run}-{n}", kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, log_dir=tmp_path
        )
        for n in range(2)
    ]
    try:
        for replica in started:
            wait_healthy(replica)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.terminate()
                try:
                    replica.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    # Not what these tests are about (graceful shutdown gets its own tests with
                    # issue 10): a hang is reported, with the replica's stacks, not failed.
                    replica.process.send_signal(signal.SIGUSR1)
                    time.sleep(1)
                    replica.process.kill()
                    log = replica.log_path.read_text(errors="replace")[-6000:]
                    warnings.warn(
                        f"{replica.gateway_id} ignored SIGTERM for 15 s:\n{log}", stacklevel=1
                    )


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS, replication_factor=1)
    broker = KafkaBroker(kafka_bootstrap)
    await broker.start()
    yield broker
    await broker.stop()


async def call_in(replica: Replica, call_sid: str) -> ClientConnection:
    """Twilio calling in through `replica`: the signed webhook, then the media stream."""
    async with httpx.AsyncClient() as client:
        response = await post_signed(client, f"{replica.url}/twilio/voice", voice_form(call_sid))
    assert response.status_code == 200, response.text
    parameters = stream_of(response.text)[1]
    socket = await connect(replica.url.replace("http", "ws", 1) + "/twilio/media")
    await socket.send(TWILIO_CONNECTED)
    await socket.send(twilio_start(call_sid, parameters))
    return socket


async def route_of(redis_url: str, call_sid: str) -> str:
    redis = Redis.from_url(redis_url)
    try:
        for _ in range(200):
            route = await CallRegistry(redis).lookup(call_sid)
            if route is not None:
                return route.gateway_id
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    raise AssertionError(f"call {call_sid} never registered")


async def first_media(socket: ClientConnection) -> bytes:
    async with asyncio.timeout(20):
        while True:
            message = json.loads(await socket.recv())
            if message["event"] == "media":
                return base64.b64decode(message["media"]["payload"])


async def test_each_call_hears_only_its_own_audio(
    replicas: list[Replica], bus: KafkaBroker, redis_url: str
) -> None:
    calls = {replica.gateway_id: f"CA{uuid.uuid4().hex}" for replica in replicas}
    sockets = {gw: await call_in(r, calls[gw]) for gw, r in zip(calls, replicas, strict=True)}
    for n, (gateway_id, call_sid) in enumerate(calls.items()):
        # What TTS does: look the call's replica up, address its audio there.
        assert await route_of(redis_url, call_sid) == gateway_id
        audio = bytes([n + 1]) * 160
        chunk = OutboundAudioChunk(
            reply_id=f"r{n}", sentence=0, seq=0, audio=audio, format=TELEPHONE, last=True
        )
        await publish(
            bus, gateway_topic(gateway_id), envelope(chunk, call_id=call_sid, producer="t")
        )
    for n, socket in enumerate(sockets.values()):
        assert await first_media(socket) == bytes([n + 1]) * 160
    for socket in sockets.values():
        await socket.close()


async def test_a_replica_that_dies_has_its_calls_ended(
    replicas: list[Replica], kafka_bootstrap: str, redis_url: str
) -> None:
    survivor, doomed = replicas
    call_sid = f"CA{uuid.uuid4().hex}"
    consumer = AIOKafkaConsumer(
        CALLS.name,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        socket = await call_in(doomed, call_sid)
        assert await route_of(redis_url, call_sid) == doomed.gateway_id
        doomed.process.send_signal(signal.SIGKILL)  # no goodbye: a crash
        doomed.process.wait(timeout=10)
        ended = None
        async with asyncio.timeout(30):
            while ended is None:
                batch = await consumer.getmany(timeout_ms=500)
                for record in (r for records in batch.values() for r in records):
                    env = json.loads(record.value)
                    if env["call_id"] == call_sid and env["event"]["type"] == "call.ended":
                        ended = env
        assert ended["event"]["reason"] == "gateway replica lost"
        assert ended["producer"] == "gateway"
        redis = Redis.from_url(redis_url)
        try:
            assert await CallRegistry(redis).lookup(call_sid) is None
            assert await CallRegistry(redis).calls_on(doomed.gateway_id) == set()
        finally:
            await redis.aclose()
        assert survivor.process.poll() is None
        await socket.close()
    finally:
        await consumer.stop()
