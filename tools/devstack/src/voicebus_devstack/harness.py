"""Start and stop the whole local stack from another program (tests, benchmarks), on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil


class StackNotReadyError(RuntimeError):
    """The stack exited or did not turn healthy in time; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningStack:
    base_url: str
    ws_url: str
    kafka_bootstrap: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 5000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_stack(
    workdir: Path, *, env: dict[str, str] | None = None, ready_timeout_s: float = 300.0
) -> RunningStack:
    """Run `voicebus-stack run` in `workdir` on free ports and wait until /healthz is 200."""
    port, kafka_port = free_port(), free_port()
    process_env = {
        **os.environ,
        "VOICEBUS_PORT": str(port),
        "VOICEBUS_ANALYTICS_PORT": str(free_port()),
        "VOICEBUS_KAFKA_PORT": str(kafka_port),
        "VOICEBUS_REDIS_PORT": str(free_port()),
        "VOICEBUS_DATA_DIR": str(workdir / "data"),
        **(env or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voicebus_devstack", "run"],
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(
        base_url=f"http://127.0.0.1:{port}",
        ws_url=f"ws://127.0.0.1:{port}",
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        process=process,
        log_path=log_path,
    )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackNotReadyError(
                f"the stack exited with {process.returncode}:\n{stack.log_tail()}"
            )
        try:
            if httpx.get(f"{stack.base_url}/healthz", timeout=2).status_code == 200:
                return stack
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise StackNotReadyError(f"not ready in {ready_timeout_s:.0f} s:\n{stack.log_tail()}")


def stop_stack(stack: RunningStack, timeout_s: float = 60.0) -> list[psutil.Process]:
    """SIGTERM the supervisor, as Ctrl-C would; returns the processes left behind, if any."""
    children = psutil.Process(stack.process.pid).children(recursive=True)
    stack.process.send_signal(signal.SIGTERM)
    stack.process.wait(timeout=timeout_s)
    _, alive = psutil.wait_procs(children, timeout=5)
    return list(alive)
