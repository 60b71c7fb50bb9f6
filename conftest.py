"""Fixtures shared by every test in the workspace: the real Redis and PostgreSQL the tests use.

Testcontainers when a Docker engine answers; otherwise the servers running on this machine
(Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 with trust auth), overridable with
VOICEBUS_TEST_REDIS_URL and VOICEBUS_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def docker_available() -> bool:
    try:
        import docker  # noqa: PLC0415 - only needed when probing for an engine

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("VOICEBUS_TEST_REDIS_URL"):
        yield url
    elif docker_available():
        from testcontainers.community.redis import RedisContainer  # noqa: PLC0415

        with RedisContainer() as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
    else:
        yield "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (SQLAlchemy form, asyncpg driver) with rights to create databases."""
    if url := os.environ.get("VOICEBUS_TEST_POSTGRES_URL"):
        yield url
    elif docker_available():
        from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
            yield container.get_connection_url()
    else:
        yield "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
