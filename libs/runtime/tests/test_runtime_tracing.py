"""Traces over a real Kafka-protocol broker: one call is one trace across services, every span
names its call, liveness beats start no trace, and a configured process exports over OTLP."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voicebus_contracts import CallEnded, CallEvent, Envelope, ServiceHeartbeat, envelope
from voicebus_contracts.topics import AUDIO_IN, HEARTBEATS, Topic
from voicebus_devstack.otlp import TRACES_PATH, FakeCollector
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish
from voicebus_runtime.settings import BusSettings
from voicebus_runtime.tracing import (
    CALL_ID,
    CallTrace,
    configure_tracing,
    configured_provider,
    tracer_provider,
)


def fresh_topic() -> Topic:
    return Topic(f"test.{uuid.uuid4().hex}", 2, "test events")


def spans_of(exporter: InMemorySpanExporter) -> dict[tuple[str, str], ReadableSpan]:
    """Finished spans by (service, span name)."""
    return {
        (str(span.resource.attributes["service.name"]), span.name): span
        for span in exporter.get_finished_spans()
    }


async def until_exported(
    exporter: InMemorySpanExporter, providers: list[TracerProvider], wanted: tuple[str, str]
) -> dict[tuple[str, str], ReadableSpan]:
    """The spans once `wanted` is among them (a consumer's span ends after its handler)."""

    async def poll() -> dict[tuple[str, str], ReadableSpan]:
        while True:
            for provider in providers:
                provider.force_flush()
            if wanted in (spans := spans_of(exporter)):
                return spans
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), 20)


async def test_one_call_is_one_trace_from_service_to_service(kafka_bootstrap: str) -> None:
    first, second = fresh_topic(), fresh_topic()
    await ensure_topics(kafka_bootstrap, [first, second])
    exporter = InMemorySpanExporter()
    providers = {
        service: tracer_provider(service, instance=f"{service}-1", exporter=exporter)
        for service in ("gateway", "media", "stt")
    }
    brokers = {
        service: make_broker(kafka_bootstrap, client_id=service, tracer_provider=provider)
        for service, provider in providers.items()
    }
    gateway, media, stt = brokers["gateway"], brokers["media"], brokers["stt"]
    heard = asyncio.Event()

    @media.subscriber(first.name, **consumer_options(f"media-{uuid.uuid4().hex}"))
    async def pass_on(env: Envelope[CallEvent]) -> None:
        await publish(media, second, env)

    @stt.subscriber(second.name, **consumer_options(f"stt-{uuid.uuid4().hex}"))
    async def hear(env: Envelope[CallEvent]) -> None:
        heard.set()

    for broker in brokers.values():
        await broker.start()
    try:
        traced = CallTrace("CA-traced", "call", tracer_provider=providers["gateway"])
        with traced.active():
            ended = envelope(CallEnded(reason="done"), call_id="CA-traced", producer="gateway")
            await publish(gateway, first, ended)
        traced.end()
        await asyncio.wait_for(heard.wait(), 30)
        spans = await until_exported(
            exporter, list(providers.values()), ("stt", f"{second.name} process")
        )
    finally:
        for broker in brokers.values():
            await broker.stop()

    root = spans["gateway", "call"]
    gateway_create = spans["gateway", f"{first.name} create"]
    gateway_publish = spans["gateway", f"{first.name} publish"]
    media_process = spans["media", f"{first.name} process"]
    media_create = spans["media", f"{second.name} create"]
    media_publish = spans["media", f"{second.name} publish"]
    stt_process = spans["stt", f"{second.name} process"]
    call = [
        root,
        gateway_create,
        gateway_publish,
        media_process,
        media_create,
        media_publish,
        stt_process,
    ]

    def parent(span: ReadableSpan) -> int | None:
        return None if span.parent is None else int(span.parent.span_id)

    def span_id(span: ReadableSpan) -> int:
        assert span.context is not None
        return int(span.context.span_id)

    assert len({span.context.trace_id for span in call if span.context}) == 1
    assert parent(root) is None
    assert parent(gateway_create) == span_id(root)
    assert parent(gateway_publish) == span_id(gateway_create)
    assert parent(media_process) == span_id(gateway_create)  # the context the headers carried
    assert parent(media_create) == span_id(media_process)  # what a handler publishes follows it
    assert parent(media_publish) == span_id(media_create)
    assert parent(stt_process) == span_id(media_create)
    assert all(span.attributes and span.attributes[CALL_ID] == "CA-traced" for span in call)


async def test_the_callers_audio_carries_the_trace_but_makes_no_span(kafka_bootstrap: str) -> None:
    onward = fresh_topic()
    await ensure_topics(kafka_bootstrap, [AUDIO_IN, onward])
    exporter = InMemorySpanExporter()
    providers = {
        service: tracer_provider(service, instance=f"{service}-1", exporter=exporter)
        for service in ("gateway", "media")
    }
    gateway, media = (
        make_broker(kafka_bootstrap, client_id=service, tracer_provider=provider)
        for service, provider in providers.items()
    )
    call_id = f"CA-{uuid.uuid4().hex}"
    passed_on = asyncio.Event()

    @media.subscriber(AUDIO_IN.name, **consumer_options(f"media-{uuid.uuid4().hex}"))
    async def hear(env: Envelope[CallEvent]) -> None:
        if env.call_id == call_id:  # the broker is shared with other tests
            await publish(media, onward, env)
            passed_on.set()

    async with gateway, media:
        await gateway.start()
        await media.start()
        call = CallTrace(call_id, "call", tracer_provider=providers["gateway"])
        with call.active():
            frame = envelope(CallEnded(reason="done"), call_id=call_id, producer="gateway")
            await publish(gateway, AUDIO_IN, frame)
        call.end()
        await asyncio.wait_for(passed_on.wait(), 30)
    for provider in providers.values():
        provider.force_flush()

    spans = spans_of(exporter)
    assert not [name for _, name in spans if name.startswith(AUDIO_IN.name)]
    root = spans["gateway", "call"]
    onward_create = spans["media", f"{onward.name} create"]
    assert onward_create.parent is not None
    assert root.context is not None
    assert onward_create.parent.span_id == root.context.span_id


async def test_liveness_beats_start_no_trace(kafka_bootstrap: str) -> None:
    calls = fresh_topic()
    await ensure_topics(kafka_bootstrap, [calls, HEARTBEATS])
    exporter = InMemorySpanExporter()
    provider = tracer_provider("media", instance="media-1", exporter=exporter)
    broker = make_broker(kafka_bootstrap, client_id="media", tracer_provider=provider)
    beat = envelope(
        ServiceHeartbeat(service="media", instance="media-1"), call_id="media-1", producer="media"
    )
    async with broker:
        await broker.start()
        await publish(broker, HEARTBEATS, beat)
        ended = envelope(CallEnded(reason="done"), call_id="CA-beat", producer="media")
        await publish(broker, calls, ended)
    provider.force_flush()

    published_to = {name.rsplit(" ", 1)[0] for _, name in spans_of(exporter)}
    assert published_to == {calls.name}


def test_without_an_endpoint_nothing_is_traced() -> None:
    assert configure_tracing("media", BusSettings(otlp_endpoint=None)) is None
    assert configured_provider() is None


@pytest.fixture
async def collector() -> AsyncIterator[FakeCollector]:
    async with FakeCollector() as collector:
        yield collector


SERVICE_PROCESS = """
import asyncio, sys
from voicebus_contracts import CallEnded, envelope
from voicebus_contracts.topics import Topic
from voicebus_runtime.bus import make_broker, publish
from voicebus_runtime.observability import observe
from voicebus_runtime.settings import BusSettings
from voicebus_runtime.tracing import CallTrace

bus = BusSettings()
observe("gateway", bus)
broker = make_broker(bus.kafka_bootstrap, client_id="gateway")

async def main() -> None:
    async with broker:
        call = CallTrace("CA-exported", "call")
        with call.active():
            env = envelope(CallEnded(reason="done"), call_id="CA-exported", producer="gateway")
            await publish(broker, Topic(sys.argv[1], 2, "test"), env)
        call.end()

asyncio.run(main())
"""


async def test_a_process_with_an_otlp_endpoint_exports_its_spans(
    kafka_bootstrap: str, collector: FakeCollector
) -> None:
    topic = fresh_topic()
    await ensure_topics(kafka_bootstrap, [topic])
    env = {
        **os.environ,
        "VOICEBUS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.base_url,  # OpenTelemetry's own will do
    }
    env.pop("VOICEBUS_OTLP_ENDPOINT", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVICE_PROCESS, topic.name, env=env
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0  # its spans are sent as it exits

    assert set(collector.paths) == {TRACES_PATH}
    assert {exported.service for exported in collector.spans} == {"gateway"}
    assert {exported.span.name for exported in collector.spans} == {
        "call",
        f"{topic.name} create",
        f"{topic.name} publish",
    }
    assert len({exported.trace_id for exported in collector.spans}) == 1
    assert {exported.attribute(CALL_ID) for exported in collector.spans} == {"CA-exported"}


def test_a_share_of_calls_is_traced_whole() -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider("gateway", instance="g-1", exporter=exporter, sample_ratio=0.5)
    tracer = provider.get_tracer(__name__)
    for n in range(200):
        call = CallTrace(f"CA-{n}", "call", tracer_provider=provider)
        with call.active(), tracer.start_as_current_span("hop"):
            pass
        call.end()
    provider.force_flush()

    traces: dict[int, list[str]] = {}
    for span in exporter.get_finished_spans():
        assert span.context is not None
        traces.setdefault(span.context.trace_id, []).append(span.name)
    assert 50 < len(traces) < 150  # about half the calls (the trace id decides, at random)
    assert all(sorted(names) == ["call", "hop"] for names in traces.values())
