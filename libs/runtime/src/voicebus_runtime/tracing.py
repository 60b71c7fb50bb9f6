"""OpenTelemetry traces: one call, one trace, from the gateway through every service and back.

The trace context travels in each Kafka message's headers (W3C `traceparent`): the broker's
middleware (see `make_broker`) starts a span for every publish and continues the publisher's
trace for every message handled, so what a handler publishes is a child of the message it
handles. The gateway holds a call's root span (`CallTrace`) from the call's start to its end and
publishes the call's events under it. Every span carries the call id as `voicebus.call_id`.

Tracing is on when an OTLP endpoint is configured; otherwise no span is made at all. Whether a
call is traced is decided once, at its root (`trace_sample_ratio`), and every service follows
that decision, so a trace is always a whole call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from aiokafka import ConsumerRecord
from faststream import BaseMiddleware, ContextRepo, StreamMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.response import KafkaPublishCommand
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from voicebus_contracts.topics import AUDIO_IN, HEARTBEATS
from voicebus_runtime.logs import call_context, current_call_id
from voicebus_runtime.settings import BusSettings

CALL_ID = "voicebus.call_id"
"""The span attribute naming the call a span belongs to."""

# OpenTelemetry's messaging conventions, as FastStream sets them on its spans.
MESSAGE_KEY = "messaging.kafka.message.key"
PUBLISHED_TO = "messaging.destination.name"
CONSUMED_FROM = "messaging.destination_publish.name"

UNTRACED_TOPICS = frozenset({HEARTBEATS.name})
"""Topics whose messages start no trace: liveness beats from every instance every few seconds
would outnumber the calls' traces."""
SPANLESS_TOPICS = frozenset({AUDIO_IN.name})
"""Topics whose messages carry their call's trace context but make no span: the caller's audio,
50 frames a second, would bury each call's few hundred spans under thousands. What a frame's
handler publishes is a child of the span the frame was published under (the call's root)."""

_PROPAGATOR = TraceContextTextMapPropagator()


class CallTelemetry:
    """FastStream's Kafka telemetry (a span for each message published and handled, the
    context in its headers), but for messages on `SPANLESS_TOPICS`, which only carry the
    context. A broker middleware: `KafkaBroker(middlewares=(CallTelemetry(provider),))`."""

    def __init__(self, tracer_provider: TracerProvider) -> None:
        self._telemetry = KafkaTelemetryMiddleware(tracer_provider=tracer_provider)

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> _Middleware:
        spans = self._telemetry(msg, context=context)
        return _SpansUnlessSpanless(msg, context=context, spans=spans)


_Middleware = BaseMiddleware[KafkaPublishCommand, Any]


class _SpansUnlessSpanless(_Middleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, spans: _Middleware) -> None:
        super().__init__(msg, context=context)
        self._spans = spans

    async def on_receive(self) -> None:
        await self._spans.on_receive()

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        return await self._spans.after_processed(exc_type, exc_val, exc_tb)

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        record = msg.raw_message
        if not isinstance(record, ConsumerRecord) or record.topic not in SPANLESS_TOPICS:
            return await self._spans.consume_scope(call_next, msg)
        token = otel_context.attach(_PROPAGATOR.extract(msg.headers))
        try:
            return await call_next(msg)
        finally:
            otel_context.detach(token)

    async def publish_scope(self, call_next: Any, cmd: KafkaPublishCommand) -> Any:
        if cmd.destination not in SPANLESS_TOPICS:
            return await self._spans.publish_scope(call_next, cmd)
        _PROPAGATOR.inject(cmd.headers)
        return await call_next(cmd)


class _CallIdOnSpans(SpanProcessor):
    """Puts the call id on each span as it starts: the key of the message it publishes or
    handles (every topic is keyed by call id), else the call the code runs for."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        key = (span.attributes or {}).get(MESSAGE_KEY)
        if isinstance(key, bytes):
            key = key.decode(errors="replace")
        call_id = key if isinstance(key, str) else current_call_id()
        if call_id is not None:
            span.set_attribute(CALL_ID, call_id)


class _CallsOnly(Sampler):
    """Starts a trace for a share of the calls (`ratio`), and for no message on
    `UNTRACED_TOPICS`."""

    def __init__(self, ratio: float) -> None:
        self._calls = ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio)

    def should_sample(  # noqa: PLR0917 - OpenTelemetry's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        topic = (attributes or {}).get(PUBLISHED_TO) or (attributes or {}).get(CONSUMED_FROM)
        sampler = ALWAYS_OFF if topic in UNTRACED_TOPICS else self._calls
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "CallsOnly"


def tracer_provider(
    service: str, *, instance: str, exporter: SpanExporter, sample_ratio: float = 1.0
) -> TracerProvider:
    """A provider for `service`'s spans, sent to `exporter` in batches. A trace's root decides
    for the whole trace: a call's with probability `sample_ratio`, a liveness beat's never."""
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.namespace": "voicebus",
                "service.name": service,
                "service.instance.id": instance,
            }
        ),
        sampler=ParentBased(root=_CallsOnly(sample_ratio)),
    )
    provider.add_span_processor(_CallIdOnSpans())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(service: str, bus: BusSettings) -> TracerProvider | None:
    """Trace this process as `service` to `bus.otlp_endpoint` over OTLP/HTTP (headers and
    timeouts from OpenTelemetry's OTEL_EXPORTER_OTLP_* variables); without an endpoint, do
    nothing: no span is made, nothing is sent. Call it once, before making brokers."""
    if not bus.otlp_endpoint:
        return None
    exporter = OTLPSpanExporter(endpoint=f"{bus.otlp_endpoint.rstrip('/')}/v1/traces")
    provider = tracer_provider(
        service, instance=bus.instance_id, exporter=exporter, sample_ratio=bus.trace_sample_ratio
    )
    trace.set_tracer_provider(provider)
    return provider


def configured_provider() -> TracerProvider | None:
    """The process's tracer provider, if tracing was configured."""
    provider = trace.get_tracer_provider()
    return provider if isinstance(provider, TracerProvider) else None


class CallTrace:
    """A call's trace, from its start to its end: its root span `name`, begun now.

    What runs within `active()` runs for the call (logs and spans say so) under the root span:
    what it publishes, and all that follows from it in every service, belongs to the call's
    trace. The gateway holds one per live call. Spans go to `tracer_provider`, by default the
    process's (none is recorded when tracing is not configured).
    """

    def __init__(
        self, call_id: str, name: str, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.call_id = call_id
        tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._root = tracer.start_span(name, context=Context(), attributes={CALL_ID: call_id})

    @contextmanager
    def active(self) -> Iterator[None]:
        with call_context(self.call_id), trace.use_span(self._root, end_on_exit=False):
            yield

    def end(self) -> None:
        """The call is over: its root span ends (what follows still joins its trace)."""
        self._root.end()
