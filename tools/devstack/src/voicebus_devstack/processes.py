"""Child processes of the local stack: started in their own process group, logs prefixed, stopped
without leaving orphans."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("voicebus.stack")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if the supervisor dies without cleaning up (e.g. SIGKILL)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One named child process whose output goes to the shared log stream, prefixed by its name;
    its pid is in `pid_file`, if given, from its start until it is seen to exit."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        pid_file: Path | None = None,
        width: int = 10,
    ) -> None:
        self.name = name
        self._argv = list(argv)
        self._env = dict(env)
        self._pid_file = pid_file
        self._prefix = f"{name:<{width}}| "
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._started_at = 0.0

    @property
    def uptime_s(self) -> float:
        """Seconds since the process was (last) started."""
        return time.monotonic() - self._started_at

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def start(self) -> None:
        """Start the process; again, once it has exited, to restart it."""
        self._started_at = time.monotonic()
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        if self._pid_file is not None:
            self._pid_file.parent.mkdir(parents=True, exist_ok=True)
            self._pid_file.write_text(f"{self._proc.pid}\n")
        self._pump = asyncio.create_task(self._pump_output(), name=f"log-{self.name}")

    async def _pump_output(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            sys.stdout.write(f"{self._prefix}{line}\n")
            sys.stdout.flush()

    async def wait(self) -> int:
        """Wait for the process to exit; its exit code."""
        assert self._proc is not None
        code = await self._proc.wait()
        self._forget_pid()
        if self._pump is not None:
            await self._pump
        return code

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM the process group, SIGKILL it if it has not exited within `timeout_s`."""
        if self._proc is None:
            return
        if self._proc.returncode is not None:
            self._forget_pid()
            return
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), timeout_s)
        except TimeoutError:
            log.warning("%s did not stop within %.0f s: killing it", self.name, timeout_s)
            self._signal_group(signal.SIGKILL)
            await self.wait()

    def _forget_pid(self) -> None:
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)
