"""Prometheus metrics of a service process: turn latency by stage, calls in progress, errors,
consumer lag, and (from the broker's middleware, see `make_broker`) FastStream's message counts
and durations.

One registry per process: prometheus_client's default, which also holds the process's CPU,
memory and garbage collection. An HTTP service serves `exposition()` at GET /metrics; any
process can serve it on a port of its own (`serve_metrics`, VOICEBUS_METRICS_PORT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from wsgiref.simple_server import WSGIServer

import prometheus_client
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge, Histogram

from voicebus_contracts.stamps import LatencyBreakdown

log = logging.getLogger(__name__)

REGISTRY = prometheus_client.REGISTRY

TURN_LATENCY = Histogram(
    "voicebus_turn_latency_seconds",
    "Latency of agent turns by stage (LatencyBreakdown: endpoint, stt, first_text, "
    "first_audio, send) and end to end (voice_to_voice)",
    ["stage"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
    registry=REGISTRY,
)
ACTIVE_CALLS = Gauge(
    "voicebus_active_calls", "Calls this process is handling now", ["service"], registry=REGISTRY
)
ERRORS = Counter(
    "voicebus_errors", "Errors by service and kind", ["service", "kind"], registry=REGISTRY
)
CONSUMER_LAG = Gauge(
    "voicebus_consumer_lag_messages",
    "Messages of a partition not yet handed to its handler, as of the consumer's last fetch",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)


def observe_turn(breakdown: LatencyBreakdown) -> None:
    """Count one agent turn's latency, each stamped stage under its name without `_ms`."""
    for field, ms in breakdown:
        if ms is not None:
            TURN_LATENCY.labels(stage=field.removesuffix("_ms")).observe(ms / 1000.0)


def call_started(service: str) -> None:
    """`service` took on a call (pair it with `call_ended`)."""
    ACTIVE_CALLS.labels(service=service).inc()


def call_ended(service: str) -> None:
    ACTIVE_CALLS.labels(service=service).dec()


def count_error(service: str, kind: str) -> None:
    """One error of `kind` in `service`. Logged errors count themselves (see configure_logging)."""
    ERRORS.labels(service=service, kind=kind).inc()


def exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus' text format, and its content type: the body of
    an HTTP service's GET /metrics."""
    return prometheus_client.generate_latest(REGISTRY), prometheus_client.CONTENT_TYPE_LATEST


def serve_metrics(port: int, *, host: str = "0.0.0.0") -> WSGIServer:  # scraped from outside
    """Serve /metrics on `port` (0: any free port) from a thread of its own, for processes
    without an HTTP server; `shutdown()` the result to stop."""
    server, _ = prometheus_client.start_http_server(port, addr=host, registry=REGISTRY)
    return server


class ConsumerLag:
    """Keeps `voicebus_consumer_lag_messages` up to date for every consumer of a broker.

    Per partition a consumer holds: its highwater (which each fetch response carries, so no
    request to the broker) less the position of the next message for its handler. A worker
    that keeps up shows 0; one that falls behind shows how far, partition by partition.
    """

    def __init__(self, broker: KafkaBroker, *, interval_s: float) -> None:
        self._broker = broker
        self._interval_s = interval_s
        self._measured: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Measure every `interval_s` from now on (once the broker has started)."""
        self._task = asyncio.create_task(self._run(), name="consumer-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def measure(self) -> None:
        """Bring the gauges up to date; partitions no longer held lose theirs."""
        measured: set[tuple[str, str, str]] = set()
        for subscriber in self._broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if not isinstance(consumer, AIOKafkaConsumer):
                continue  # not started
            group = getattr(subscriber, "group_id", None) or ""
            for partition in consumer.assignment():
                highwater = consumer.highwater(partition)
                if highwater is None:
                    continue  # not fetched yet
                try:
                    position = await consumer.position(partition)
                except IllegalStateError:
                    continue  # revoked meanwhile
                labels = (group, partition.topic, str(partition.partition))
                CONSUMER_LAG.labels(*labels).set(max(highwater - position, 0))
                measured.add(labels)
        for gone in self._measured - measured:
            CONSUMER_LAG.remove(*gone)
        self._measured = measured

    async def _run(self) -> None:
        while True:
            try:
                await self.measure()
            except Exception:
                log.warning("consumer lag not measured", exc_info=True)
            await asyncio.sleep(self._interval_s)
