"""Settings of the local stack (`make run`): ports, data directory, which services to start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_BROKER_FETCH_MAX_WAIT_MS = 20
"""The embedded broker answers a fetch only when its wait is over (it does not long-poll), so a
hop costs about half this wait, and a shorter wait costs broker CPU that speech recognition then
lacks. Measured on 2 cores, one call, median voice to voice: 5 ms -> 1540 ms (stack idle at 35%
CPU), 10 ms -> 1445, 20 ms -> 1375 (idle at 19%), 50 ms -> 1420. Against Apache Kafka, which
answers as soon as data arrives, leave VOICEBUS_KAFKA_FETCH_MAX_WAIT_MS at its default."""

SERVICES = ("analytics", "media", "stt", "agent", "tts", "gateway")
"""Every service, in start order: the gateway last, so callers are taken once all are there."""


class StackSettings(BaseSettings):
    """VOICEBUS_HOST/PORT for the gateway, the embedded infrastructure's ports, the data dir.

    Set VOICEBUS_KAFKA_BOOTSTRAP or VOICEBUS_REDIS_URL to use an existing Kafka or Redis instead of
    the embedded ones.
    """

    model_config = SettingsConfigDict(env_prefix="VOICEBUS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    analytics_port: int = Field(default=8081, ge=1, le=65535)
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    redis_port: int = Field(default=6390, ge=1, le=65535)
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    kafka_fetch_max_wait_ms: int | None = Field(default=None, ge=0, le=10_000)
    """Passed to every service; unset: EMBEDDED_BROKER_FETCH_MAX_WAIT_MS with the embedded
    broker, the services' own default with an existing Kafka."""
    data_dir: Path = Path(".voicebus")
    ready_timeout_s: float = Field(default=300.0, gt=0)
    """How long to wait for /healthz to turn 200 (the first start assembles the STT model)."""
    stop_timeout_s: float = Field(default=15.0, gt=0)
    """How long a process gets to stop after SIGTERM before it is killed."""
