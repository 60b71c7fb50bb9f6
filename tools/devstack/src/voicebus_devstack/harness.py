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

from voicebus_devstack.caller import DEFAULT_TO, TwilioCaller, dial_in
from voicebus_devstack.settings import (
    REPLICA_PORT_STEP,
    StackSettings,
    pid_file,
    twilio_auth_token,
)

KILL_WAIT_S = 10.0
"""How long a SIGKILLed process may take to be gone (reaped by the supervisor)."""


class StackNotReadyError(RuntimeError):
    """The stack exited or did not turn healthy in time; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _replica_ports(replicas: int) -> list[int]:
    """Free ports for `replicas` processes of a listening service (gateway, agent API), spaced as
    the supervisor spaces them."""
    while True:
        base = free_port()
        ports = [base + i * REPLICA_PORT_STEP for i in range(replicas)]
        if all(port < 65536 and _is_free(port) for port in ports[1:]):
            return ports


@dataclass
class RunningStack:
    gateway_urls: list[str]
    """Each gateway replica's http:// URL; the first is `base_url`."""
    kafka_bootstrap: str
    redis_url: str
    twilio_auth_token: str
    """What the gateways verify Twilio's webhooks with (the simulated caller signs with it)."""
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path

    @property
    def base_url(self) -> str:
        return self.gateway_urls[0]

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    async def phone_call(
        self, *, gateway_url: str | None = None, to_number: str = DEFAULT_TO
    ) -> TwilioCaller:
        """A simulated Twilio call to `to_number` into the stack through `gateway_url` (the
        first gateway by default): the signed voice webhook now, the media stream once entered."""
        url = gateway_url or self.base_url
        return await dial_in(
            f"{url}/twilio/voice", auth_token=self.twilio_auth_token, to_number=to_number
        )

    def log_tail(self, chars: int = 5000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def output_of(self, name: str) -> list[str]:
        """What the stack's process `name` ("agent-1", "gateway"; "stack", the supervisor)
        logged so far, line by line, without the prefix naming it."""
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            prefix, sep, text = line.partition("| ")
            if sep and prefix.rstrip() == name:
                lines.append(text)
        return lines

    def kill(self, name: str) -> None:
        """SIGKILL the stack's running process `name` ("agent-1") and whatever it started, as a
        crash would: no shutdown, no goodbye to the broker. Returns once it is gone."""
        path = pid_file(self.data_dir, name)
        try:
            pid = int(path.read_text())
        except FileNotFoundError:
            raise LookupError(f"the stack runs no process named {name!r}") from None
        children = psutil.Process(self.process.pid).children()
        victim = next((child for child in children if child.pid == pid), None)
        if victim is None:  # exited, and its pid file is not cleared yet
            raise LookupError(f"{name} (pid {pid}) is no longer running in the stack")
        os.killpg(pid, signal.SIGKILL)
        victim.wait(timeout=KILL_WAIT_S)


def start_stack(
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    replicas: str = "",
    ready_timeout_s: float = 300.0,
) -> RunningStack:
    """Run `voicebus-stack run` in `workdir` on free ports and wait until /healthz is 200.

    `replicas` is the supervisor's REPLICAS, e.g. "gateway=2 stt=2".
    """
    settings = StackSettings(replicas=replicas)
    gateway_ports = _replica_ports(settings.replicas_of("gateway"))
    kafka_port, redis_port = free_port(), free_port()
    data_dir = workdir / "data"
    process_env = {
        **os.environ,
        "VOICEBUS_PORT": str(gateway_ports[0]),
        "VOICEBUS_ANALYTICS_PORT": str(free_port()),
        "VOICEBUS_AGENTS_PORT": str(_replica_ports(settings.replicas_of("agent"))[0]),
        "VOICEBUS_KAFKA_PORT": str(kafka_port),
        "VOICEBUS_REDIS_PORT": str(redis_port),
        "VOICEBUS_DATA_DIR": str(data_dir),
        "VOICEBUS_REPLICAS": replicas,
        # Tests and benchmarks hear the caller's words echoed: the speech path, checkable.
        "VOICEBUS_AGENT_OFFLINE": "echo",
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
        gateway_urls=[f"http://127.0.0.1:{port}" for port in gateway_ports],
        kafka_bootstrap=process_env.get("VOICEBUS_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka_port}"),
        redis_url=process_env.get("VOICEBUS_REDIS_URL", f"redis://127.0.0.1:{redis_port}/0"),
        twilio_auth_token=twilio_auth_token(data_dir),
        process=process,
        log_path=log_path,
        data_dir=data_dir,
    )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackNotReadyError(
                f"the stack exited with {process.returncode}:\n{stack.log_tail()}"
            )
        try:
            if all(
                httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                for url in stack.gateway_urls
            ):
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
