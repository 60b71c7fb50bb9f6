"""Prometheus metrics of a service process: turn latency by stage, calls in progress, errors,
consumer lag, and (from the broker's middleware, see `make_broker`) FastStream's message counts
and durations.

One registry per process: prometheus_client's default, which also holds the process's CPU,
memory and garbage collection. An HTTP service serves `exposition()` at GET /metrics; any
process can serve it on a port of its own (`serve_metrics`, VOICEBUS_METRICS_PORT), beside
GET /healthz: whether the process's brokers run and reach the bus (`BrokerHealth`), which is
what container probes ask.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import prometheus_client
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.exposition import ThreadingWSGIServer

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


BROKER_PING_TIMEOUT_S = 2.0
"""How long /healthz waits for the bus to answer; a probe's own timeout must be longer."""


class BrokerHealth:
    """Whether this process's Kafka brokers run and reach the bus: what /healthz answers.

    A broker counts from `started` to `stopped` (`ConsumerLag` calls both: every service runs
    one exactly while its broker runs). `check` asks the cluster for its metadata through each
    broker's own client, on the event loop the broker runs on, so it fails before the start,
    after the stop, when the bus does not answer, and when the event loop is stuck.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[tuple[KafkaBroker, asyncio.AbstractEventLoop]] = []
        self._stopping = False

    def stopping(self) -> None:
        """The process takes no new work from now on (a gateway finishing its calls): no longer
        ready, so a load balancer sends it nothing new."""
        self._stopping = True

    def started(self, broker: KafkaBroker) -> None:
        """`broker` runs on the current event loop from now on (and takes work, if the process
        had stopped taking any)."""
        with self._lock:
            self._running.append((broker, asyncio.get_running_loop()))
            self._stopping = False

    def stopped(self, broker: KafkaBroker) -> None:
        with self._lock:
            self._running = [(b, loop) for b, loop in self._running if b is not broker]

    def check(self, *, timeout_s: float = BROKER_PING_TIMEOUT_S) -> str | None:
        """None when every running broker reached the bus within `timeout_s`, else what is
        wrong. Blocks: call it from another thread than the brokers' (the metrics server's)."""
        with self._lock:
            running = list(self._running)
        if self._stopping:
            return "stopping"
        if not running:
            return "not started"
        for broker, loop in running:
            ping = broker.ping(timeout=timeout_s)
            try:
                answer = asyncio.run_coroutine_threadsafe(ping, loop)
            except RuntimeError:  # the loop is closed: the service is gone
                ping.close()
                return "stopped"
            try:
                reached = answer.result(timeout=timeout_s + 1.0)
            except TimeoutError:
                answer.cancel()
                return "event loop not answering"
            if not reached:
                return "bus unreachable"
        return None


BROKERS = BrokerHealth()
"""This process's brokers, as /healthz on the metrics port reports them."""


class _QuietHandler(WSGIRequestHandler):
    """No access log line for each probe and scrape."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def _health_and_metrics(health: BrokerHealth) -> WSGIApplication:
    """GET /healthz: 200 `{"status": "ok"}` while `health` holds, else 503 with what is wrong;
    every other path: the metrics, as prometheus_client serves them."""
    metrics = prometheus_client.make_wsgi_app(REGISTRY)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            exposed: Iterable[bytes] = metrics(environ, start_response)
            return exposed
        problem = health.check()
        body = json.dumps({"status": problem or "ok"}).encode()
        status = "200 OK" if problem is None else "503 Service Unavailable"
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [body]

    return app


def serve_metrics(
    port: int,
    *,
    host: str = "0.0.0.0",  # scraped and probed from outside
    health: BrokerHealth = BROKERS,
) -> WSGIServer:
    """Serve /metrics and /healthz on `port` (0: any free port) from threads of their own, for
    processes without an HTTP server, and for probes that must not depend on one;
    `shutdown()` the result to stop."""
    server = make_server(
        host,
        port,
        _health_and_metrics(health),
        server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class ConsumerLag:
    """Keeps `voicebus_consumer_lag_messages` up to date for every consumer of a broker.

    Per partition a consumer holds: its highwater (which each fetch response carries, so no
    request to the broker) less the position of the next message for its handler. A worker
    that keeps up shows 0; one that falls behind shows how far, partition by partition.

    Every service runs one exactly while its broker runs, so it also tells `health` (the
    process's /healthz) when the broker starts and stops.
    """

    def __init__(
        self, broker: KafkaBroker, *, interval_s: float, health: BrokerHealth = BROKERS
    ) -> None:
        self._broker = broker
        self._interval_s = interval_s
        self._health = health
        self._measured: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Measure every `interval_s` from now on (once the broker has started)."""
        self._health.started(self._broker)
        self._task = asyncio.create_task(self._run(), name="consumer-lag")

    async def stop(self) -> None:
        self._health.stopped(self._broker)
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
