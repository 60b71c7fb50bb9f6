"""Settings every service shares: where the bus and Redis are, and who this instance is."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class BusSettings(BaseSettings):
    """VOICEBUS_KAFKA_BOOTSTRAP, VOICEBUS_REDIS_URL, VOICEBUS_INSTANCE_ID, VOICEBUS_LOG_LEVEL."""

    model_config = SettingsConfigDict(env_prefix="VOICEBUS_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    instance_id: str = Field(default_factory=_default_instance)
    log_level: str = "INFO"
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    """Replicas of each topic the services create (a production cluster wants 3)."""
    kafka_fetch_max_wait_ms: int = Field(default=500, ge=0, le=10_000)
    """How long a voice-path consumer's fetch may wait on an idle partition.

    Apache Kafka answers a fetch as soon as data arrives, so the default costs no latency there.
    A broker that does not long-poll (the embedded one) holds every fetch this long: the local
    stack sets a few milliseconds, trading broker CPU for latency."""


def choice_of(value: object, options: tuple[str, ...], *, variable: str) -> object:
    """`value` if it is one of `options`, else an error naming the variable an operator sets."""
    if value not in options:
        raise ValueError(f"{variable} must be one of {', '.join(options)}, not {value!r}")
    return value
