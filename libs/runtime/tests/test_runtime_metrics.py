"""Metrics: what services observe is in the exposition, served on a port of its own with
/healthz beside it, and the consumer lag and message counts of a broker over a real
Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

from voicebus_contracts import CallEnded, CallEvent, Envelope, envelope
from voicebus_contracts.stamps import LatencyBreakdown
from voicebus_contracts.topics import Topic
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish
from voicebus_runtime.metrics import (
    REGISTRY,
    BrokerHealth,
    ConsumerLag,
    call_ended,
    call_started,
    count_error,
    exposition,
    observe_turn,
    serve_metrics,
)


def sample(body: bytes, name: str, **labels: str) -> float:
    """The value of sample `name` with `labels` in an exposition (0 if absent)."""
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


def test_turn_latency_calls_and_errors_are_in_the_exposition() -> None:
    before, _ = exposition()
    observe_turn(
        LatencyBreakdown(
            endpoint_ms=500.0,
            stt_ms=120.5,
            first_text_ms=None,  # a stage that was not stamped is not counted
            first_audio_ms=80.0,
            send_ms=20.0,
            voice_to_voice_ms=720.5,
        )
    )
    call_started("media")
    call_started("media")
    call_ended("media")
    count_error("media", "frame_not_processed")
    after, content_type = exposition()

    def grew(name: str, **labels: str) -> float:
        return round(sample(after, name, **labels) - sample(before, name, **labels), 6)

    assert content_type.startswith("text/plain")
    assert grew("voicebus_turn_latency_seconds_count", stage="stt") == 1
    assert grew("voicebus_turn_latency_seconds_sum", stage="stt") == 0.1205
    assert grew("voicebus_turn_latency_seconds_bucket", stage="stt", le="0.2") == 1
    assert grew("voicebus_turn_latency_seconds_bucket", stage="stt", le="0.1") == 0
    assert grew("voicebus_turn_latency_seconds_count", stage="voice_to_voice") == 1
    assert grew("voicebus_turn_latency_seconds_count", stage="first_text") == 0
    assert grew("voicebus_active_calls", service="media") == 1
    assert grew("voicebus_errors_total", service="media", kind="frame_not_processed") == 1


def test_metrics_are_served_on_a_port_of_their_own() -> None:
    server = serve_metrics(0, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    finally:
        server.shutdown()
        server.server_close()
    assert b"# TYPE voicebus_turn_latency_seconds histogram" in body
    assert b"# TYPE voicebus_consumer_lag_messages gauge" in body


async def test_consumer_lag_is_what_the_handler_has_not_had_yet(kafka_bootstrap: str) -> None:
    topic = Topic(f"test.{uuid.uuid4().hex}", 1, "test calls")
    await ensure_topics(kafka_bootstrap, [topic])
    group = f"lag-{uuid.uuid4().hex[:8]}"
    broker = make_broker(kafka_bootstrap, client_id="lag")
    release, all_handled = asyncio.Event(), asyncio.Event()
    handled: list[Envelope[CallEvent]] = []

    @broker.subscriber(topic.name, **consumer_options(group, fetch_max_wait_ms=5))
    async def on_call(env: Envelope[CallEvent]) -> None:
        await release.wait()  # the first message holds up the rest
        handled.append(env)
        if len(handled) == 5:
            all_handled.set()

    lag = ConsumerLag(broker, interval_s=60)
    labels = {"group": group, "topic": topic.name, "partition": "0"}

    async def until_lag_is(messages: int) -> None:
        async def poll() -> None:
            while True:
                await lag.measure()
                if REGISTRY.get_sample_value("voicebus_consumer_lag_messages", labels) == messages:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), 20)

    async with broker:
        for i in range(5):
            ended = envelope(CallEnded(reason=f"r{i}"), call_id=f"CA-{i}", producer="t")
            await publish(broker, topic, ended)
        await broker.start()
        await until_lag_is(4)  # one in the handler, four behind it
        release.set()
        await asyncio.wait_for(all_handled.wait(), 20)
        await until_lag_is(0)

    received = REGISTRY.get_sample_value(
        "faststream_received_messages_total",
        {"app_name": "faststream", "broker": "kafka", "handler": topic.name},
    )
    assert received == 5  # FastStream's own message metrics are in the same registry


def get(url: str) -> tuple[int, dict[str, str]]:
    """GET `url` (blocking): its status and JSON body, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def metrics_server(health: BrokerHealth) -> Iterator[str]:
    """The metrics server for `health` on a free port while entered; its base URL."""
    server = serve_metrics(0, host="127.0.0.1", health=health)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_healthz_is_ok_only_while_the_broker_runs(kafka_bootstrap: str) -> None:
    health = BrokerHealth()
    broker = make_broker(kafka_bootstrap, client_id="health")
    lag = ConsumerLag(broker, interval_s=60, health=health)
    with metrics_server(health) as url:
        # The server answers from its own thread, which waits on this test's event loop.
        assert await asyncio.to_thread(get, f"{url}/healthz") == (503, {"status": "not started"})
        async with broker:
            await broker.start()
            lag.start()
            assert await asyncio.to_thread(get, f"{url}/healthz") == (200, {"status": "ok"})
            await lag.stop()
        assert await asyncio.to_thread(get, f"{url}/healthz") == (503, {"status": "not started"})


async def test_healthz_fails_when_the_bus_is_gone() -> None:
    from voicebus_devstack.harness import free_port  # noqa: PLC0415 - the test broker's tools
    from voicebus_devstack.supervisor import broker_command, wait_for_port  # noqa: PLC0415

    port = free_port()
    bus = await asyncio.create_subprocess_exec(
        *broker_command(port), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    health = BrokerHealth()
    broker = make_broker(f"127.0.0.1:{port}", client_id="health")
    lag = ConsumerLag(broker, interval_s=60, health=health)
    try:
        await wait_for_port("127.0.0.1", port, timeout_s=30, what="the test broker")
        with metrics_server(health) as url:
            async with broker:
                await broker.start()
                lag.start()
                assert await asyncio.to_thread(get, f"{url}/healthz") == (200, {"status": "ok"})
                bus.kill()
                await bus.wait()
                status = await asyncio.to_thread(get, f"{url}/healthz")
                await lag.stop()
    finally:
        if bus.returncode is None:
            bus.kill()
            await bus.wait()
    assert status == (503, {"status": "bus unreachable"})


async def test_healthz_fails_while_the_event_loop_is_stuck(kafka_bootstrap: str) -> None:
    health = BrokerHealth()
    broker = make_broker(kafka_bootstrap, client_id="health")
    lag = ConsumerLag(broker, interval_s=60, health=health)
    answered = threading.Event()

    def probe(url: str) -> tuple[int, dict[str, str]]:
        try:
            return get(f"{url}/healthz")
        finally:
            answered.set()

    with metrics_server(health) as url:
        async with broker:
            await broker.start()
            lag.start()
            probing = asyncio.get_running_loop().run_in_executor(None, probe, url)
            answered.wait(timeout=30)  # blocks this event loop until the probe has its answer
            status = await probing
            await lag.stop()
    assert status == (503, {"status": "event loop not answering"})
