"""Settings every service shares: where the bus and Redis are, who this instance is, and how
it reports on itself (logs, metrics, traces)."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SESSION_TIMEOUT_MS = 6_000
"""Apache Kafka's smallest by default (group.min.session.timeout.ms); aiokafka's own is 10 s."""


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class BusSettings(BaseSettings):
    """VOICEBUS_KAFKA_BOOTSTRAP, VOICEBUS_REDIS_URL, VOICEBUS_INSTANCE_ID, VOICEBUS_LOG_LEVEL and
    the rest of its fields, each VOICEBUS_ and its name in capitals; the OTLP endpoint also
    answers to OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT."""

    model_config = SettingsConfigDict(env_prefix="VOICEBUS_", extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    instance_id: str = Field(default_factory=_default_instance)
    log_level: str = "INFO"
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    """Replicas of each topic the services create (a production cluster wants 3)."""
    kafka_session_timeout_ms: int = Field(default=DEFAULT_SESSION_TIMEOUT_MS, ge=1_000, le=300_000)
    """How long a consumer group waits for a worker that stopped answering (killed, frozen, cut
    off) before moving its partitions to the others: the calls it held are silent about this
    long plus a rebalance. Lower moves calls sooner but expels a worker that stalls this long;
    Apache Kafka refuses less than its group.min.session.timeout.ms (6000 by default). A worker
    that stops cleanly (SIGTERM) leaves at once, whatever this is."""
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    """How long a voice-path consumer's fetch may wait on an idle partition.

    Apache Kafka answers a fetch as soon as data arrives, so the default costs no latency there.
    A broker that does not long-poll (the embedded one) holds every fetch this long: the local
    stack sets a few milliseconds, trading broker CPU for latency."""
    log_format: Literal["text", "json"] = "text"
    """`text` reads well in a terminal (`make run`); `json` is one object per line, with the
    service and the call id, for a log pipeline."""
    redact_pii: bool = False
    """Keep and show callers' email addresses, phone and card numbers only as placeholders:
    in what analytics records (transcripts, replies, tool calls, end reasons, summaries), in
    the live feed, and in every service's logs. What the agent's model hears is not redacted
    (docs/privacy.md)."""
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of a /metrics endpoint of its own (Prometheus); 0: none. Off by default because
    `make run` starts several processes of a service on one host, where any fixed port would
    clash, and nothing scrapes them there; a container sets it. HTTP services also serve
    /metrics beside their API, from `voicebus_runtime.metrics.exposition`."""
    consumer_lag_interval_s: float = Field(default=15.0, gt=0)
    """How often the consumer lag gauges are brought up to date."""
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VOICEBUS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    """Base URL of an OTLP/HTTP collector (traces go to <url>/v1/traces), or OpenTelemetry's
    own OTEL_EXPORTER_OTLP_ENDPOINT; unset: nothing is traced."""
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """The share of calls traced, decided at each call's start by the gateway (the rest of the
    services follow): a call is traced whole or not at all."""


def choice_of(value: object, options: tuple[str, ...], *, variable: str) -> object:
    """`value` if it is one of `options`, else an error naming the variable an operator sets."""
    if value not in options:
        raise ValueError(f"{variable} must be one of {', '.join(options)}, not {value!r}")
    return value
