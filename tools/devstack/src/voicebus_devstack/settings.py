"""Settings of the local stack (`make run`): ports, data directory, which services to start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EMBEDDED_BROKER_FETCH_MAX_WAIT_MS = 20
"""The embedded broker answers a fetch only when its wait is over (it does not long-poll), so a
hop costs about half this wait, and a shorter wait costs broker CPU that speech recognition then
lacks. Measured on 2 cores, one call, median voice to voice: 5 ms -> 1540 ms (stack idle at 35%
CPU), 10 ms -> 1445, 20 ms -> 1375 (idle at 19%), 50 ms -> 1420. Against Apache Kafka, which
answers as soon as data arrives, leave VOICEBUS_KAFKA_FETCH_MAX_WAIT_MS at its default."""

SERVICES = ("analytics", "media", "stt", "agent", "tts", "gateway")
"""Every service, in start order: the gateway last, so callers are taken once all are there."""
REPLICA_PORT_STEP = 10
"""Replica i of a listening service (gateway, agent API) uses its port + i * REPLICA_PORT_STEP."""


LOCAL_TWILIO_TOKEN_FILE = "twilio-auth-token"
PID_DIR = "pids"


def pid_file(data_dir: Path, process: str) -> Path:
    """Where the stack keeps the pid of its running process `process` ("kafka", "agent-1"...),
    so a test, or anyone trying failover by hand, can kill exactly that one:
    `kill -9 $(cat .voicebus/pids/agent-1.pid)`."""
    return data_dir / PID_DIR / f"{process}.pid"


def twilio_auth_token(data_dir: Path) -> str:
    """TWILIO_AUTH_TOKEN if set; else the local stack's own, made once under `data_dir`.

    With no Twilio account, the gateway still verifies every webhook: the simulated Twilio
    caller signs with this token (`voicebus_devstack.caller.dial_in`). Point a real Twilio
    number at the stack and set TWILIO_AUTH_TOKEN to the account's.
    """
    if token := os.environ.get("TWILIO_AUTH_TOKEN"):
        return token
    path = data_dir / LOCAL_TWILIO_TOKEN_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(16))
    return path.read_text().strip()


class StackSettings(BaseSettings):
    """VOICEBUS_HOST/PORT for the gateway, the embedded infrastructure's ports, the data dir.

    Set VOICEBUS_KAFKA_BOOTSTRAP or VOICEBUS_REDIS_URL to use an existing Kafka or Redis instead of
    the embedded ones.
    """

    model_config = SettingsConfigDict(env_prefix="VOICEBUS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    analytics_port: int = Field(default=8081, ge=1, le=65535)
    agents_port: int = Field(default=8082, ge=1, le=65535)
    """The agent service's API (agent replica i on this port + 10 i); the gateway forwards
    /api/agents to replica 0."""
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    redis_port: int = Field(default=6390, ge=1, le=65535)
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    kafka_fetch_max_wait_ms: int | None = Field(default=None, ge=0, le=10_000)
    """Passed to every service; unset: EMBEDDED_BROKER_FETCH_MAX_WAIT_MS with the embedded
    broker, the services' own default with an existing Kafka."""
    data_dir: Path = Path(".voicebus")
    replicas: Annotated[dict[str, int], NoDecode] = {}
    """Processes per service, `stt=2 agent=2 gateway=2` in REPLICAS or VOICEBUS_REPLICAS;
    one of each by default."""
    ready_timeout_s: float = Field(default=300.0, gt=0)
    """How long to wait for /healthz to turn 200 (the first start assembles the STT model)."""
    stop_timeout_s: float = Field(default=15.0, gt=0)
    """How long a process gets to stop after SIGTERM before it is killed."""
    restart_delay_s: float = Field(default=1.0, ge=0)
    """A service process that exits on its own is started again after this long, doubled for
    each crash in a row that came soon after its start (at most RESTART_MAX_DELAY_S)."""
    restart_limit: int = Field(default=5, ge=0)
    """After this many crashes in a row, each soon after its start, the service is taken for
    broken and the stack stops; 0: any exit of a service stops the stack."""

    @field_validator("replicas", mode="before")
    @classmethod
    def _parse_replicas(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        counts: dict[str, int] = {}
        for item in value.replace(",", " ").split():
            service, sep, count = item.partition("=")
            if not sep or service not in SERVICES or not count.isdigit() or int(count) < 1:
                raise ValueError(
                    f"expected service=count with a service of {', '.join(SERVICES)} and a "
                    f"count of at least 1, got {item!r}"
                )
            counts[service] = int(count)
        if counts.get("analytics", 1) != 1:
            raise ValueError("analytics runs once: it serves the API on VOICEBUS_ANALYTICS_PORT")
        return counts

    def replicas_of(self, service: str) -> int:
        return self.replicas.get(service, 1)

    def gateway_port(self, replica: int) -> int:
        return self.port + replica * REPLICA_PORT_STEP

    def agents_api_port(self, replica: int) -> int:
        return self.agents_port + replica * REPLICA_PORT_STEP
