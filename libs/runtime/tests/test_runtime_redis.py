"""The services' Redis client rides out a restart of Redis: a command sent while it restarts
waits for it rather than failing the call it was for."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebus_devstack.harness import free_port
from voicebus_devstack.supervisor import redis_server_binary
from voicebus_runtime.redis import connect


class RedisServer:
    """A redis-server of the test's own (the embedded one), which keeps its data on disk."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self._directory),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_a_command_during_a_restart_waits_for_redis_to_be_back(server: RedisServer) -> None:
    redis = connect(server.url)
    await redis.set("voicebus:call:CA1:route", "gateway-0")  # waits for it to listen, too

    server.stop()
    restarted = asyncio.get_running_loop().call_later(0.5, server.start)
    try:
        assert await redis.get("voicebus:call:CA1:route") == b"gateway-0"
    finally:
        restarted.cancel()
        await redis.aclose()
