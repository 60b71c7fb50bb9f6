"""A soak: many simulated Twilio calls at once, for minutes, on the real stack.

Each of `calls` lines phones the stack, says a few turns, hangs up and dials again at once, so
calls start and end throughout while as many as `calls` are always in progress. What it tells:
whether every turn said was answered (the caller heard reply audio) and is on record with a
reply (analytics), whether anything logged an error, and whether any process's memory grows.

Errors are counted in the stack's log, not from `voicebus_errors_total`: the log holds every
process of the stack (the broker, Redis and the supervisor too, which notes a crashed process),
while /metrics answers only on the gateway, analytics and agent API ports (the other services
serve it only on a VOICEBUS_METRICS_PORT of their own, which the local stack leaves off).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import psutil
import websockets

from voicebus_bench.conversations import STAGES, CallRun, converse, records, reply_latencies
from voicebus_bench.stats import percentiles
from voicebus_devstack.caller import VoiceWebhookError
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.settings import PID_DIR

log = logging.getLogger("voicebus.bench")

MB = 1024 * 1024
FLAT_MB_PER_MIN = 1.0
"""A process's memory counts as flat when its RSS grows less than this per minute after the
warm-up (least-squares slope of its samples): at the 30 or so calls a minute of the default
soak, what each call leaves behind shows from about 35 kB on."""
SUPERVISOR = "stack"
"""The name the supervisor's own memory is reported under."""
BROKER = "kafka"
"""The embedded broker: its memory storage keeps every message, so its memory grows with the
calls' traffic by design (a real Kafka keeps them on disk), and is reported, not judged."""
REFUSED_CALL_PAUSE_S = 1.0
"""A line whose call was refused waits this long before it dials again."""
CALL_REFUSED = (VoiceWebhookError, httpx.HTTPError, OSError, websockets.WebSocketException)
"""How a call fails to start: the voice webhook or the media stream refused or unreachable."""
_ERROR_LEVEL = re.compile(r"^\s*(?:\S+\s+){0,2}(?:ERROR|CRITICAL)\b")
"""A line at level ERROR or CRITICAL: the level is among its first three fields in the
services' format (date, time, level), tansu's (time, level) and uvicorn's (level first)."""
_CRASHED = re.compile(r" exited with code ")
"""The supervisor's note of a process that exited on its own (it starts it again)."""


@dataclass(frozen=True)
class SoakPlan:
    calls: int = 30
    """Calls in progress at any time."""
    duration_s: float = 600.0
    """How long lines keep dialing; calls in progress then finish."""
    warmup_s: float = 60.0
    """Memory is judged from here on: first calls, connections and caches are behind."""
    turns_per_call: int = 3
    sample_every_s: float = 5.0
    """How often every process's memory and CPU time are sampled."""
    stagger_s: float = 0.5
    """The lines start this far apart, so their calls do not start and end in step."""
    progress_every_s: float = 60.0


@dataclass(frozen=True)
class ProcessUse:
    """One process's RSS over the soak, in MB, and the CPU it used."""

    start_mb: float
    """At the end of the warm-up."""
    end_mb: float
    """When the lines stopped dialing, calls still in progress."""
    max_mb: float
    """The most from the end of the warm-up on."""
    growth_mb_per_min: float
    """The least-squares slope of its samples from the end of the warm-up on."""
    cpu_cores: float
    """CPU time (user and system) per second from the end of the warm-up on: 1.0 is a core."""

    @property
    def flat(self) -> bool:
        return self.growth_mb_per_min < FLAT_MB_PER_MIN


class Sample(NamedTuple):
    at_s: float
    """Seconds since the soak started."""
    rss: int
    cpu_s: float
    """CPU time (user and system) the process has used since it started."""


@dataclass
class ProcessSamples:
    """Memory and CPU time of each process of a stack, sampled over the soak."""

    by_process: dict[str, list[Sample]] = field(default_factory=dict)

    def take(self, stack: RunningStack, at_s: float) -> None:
        for name, pid in stack_pids(stack).items():
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    rss, cpu = process.memory_info().rss, process.cpu_times()
            except psutil.NoSuchProcess:
                continue  # exited between the pid file and now: the log tells why
            self.by_process.setdefault(name, []).append(Sample(at_s, rss, cpu.user + cpu.system))

    def use_after(self, warmup_s: float) -> dict[str, ProcessUse]:
        """Each process's use from its first sample at or after `warmup_s` on."""
        uses = {}
        for name, samples in sorted(self.by_process.items()):
            kept = [sample for sample in samples if sample.at_s >= warmup_s]
            if not kept:
                continue
            first, last = kept[0], kept[-1]
            minutes = np.array([sample.at_s / 60.0 for sample in kept])
            mb = np.array([sample.rss / MB for sample in kept])
            slope = float(np.polyfit(minutes, mb, 1)[0]) if len(kept) > 1 else 0.0
            seconds = last.at_s - first.at_s
            uses[name] = ProcessUse(
                start_mb=round(float(mb[0]), 1),
                end_mb=round(float(mb[-1]), 1),
                max_mb=round(float(mb.max()), 1),
                growth_mb_per_min=round(slope, 2) + 0.0,  # + 0.0: no "-0.00" in the report
                cpu_cores=round((last.cpu_s - first.cpu_s) / seconds, 2) if seconds else 0.0,
            )
        return uses


def stack_pids(stack: RunningStack) -> dict[str, int]:
    """The stack's processes by name ("kafka", "agent-1"...; the supervisor as SUPERVISOR), from
    the pid files it keeps for each."""
    pids = {SUPERVISOR: stack.process.pid}
    for path in (stack.data_dir / PID_DIR).glob("*.pid"):
        try:
            pids[path.stem] = int(path.read_text())
        except (FileNotFoundError, ValueError):
            continue  # the process just exited, or is being written
    return pids


def logged_errors(log_path: Path) -> list[str]:
    """The lines of the stack's log at level ERROR or CRITICAL, from any of its processes, and
    the supervisor's notes of a process that exited on its own."""
    errors = []
    for line in log_path.read_text(errors="replace").splitlines():
        _, sep, text = line.partition("| ")
        if sep and (_ERROR_LEVEL.match(text) or _CRASHED.search(text)):
            errors.append(line)
    return errors


@dataclass
class SoakResult:
    """What a soak saw: each call and its record, the stack's logged errors, its processes."""

    plan: SoakPlan
    runs: list[CallRun]
    """Every call that started."""
    refused: list[str]
    """Why each call that could not start was refused."""
    records: list[dict[str, Any] | None]
    """Each started call's record (None if never recorded), in the order of `runs`."""
    errors: list[str]
    processes: dict[str, ProcessUse]
    started_at: float
    """When the soak began (wall clock)."""
    seconds: float
    callers_cpu_cores: float
    """CPU the simulated callers (this process) used per second, on the stack's machine."""

    @property
    def calls_completed(self) -> int:
        """Calls that heard a reply to every turn and hung up."""
        return sum(
            1
            for run in self.runs
            if run.error is None and run.answered_turns == self.plan.turns_per_call
        )

    @property
    def turns_said(self) -> int:
        return sum(run.said_turns for run in self.runs)

    @property
    def turns_answered(self) -> int:
        return sum(run.answered_turns for run in self.runs)

    def _on_record(self) -> list[int]:
        """Per call, its said turns recorded with a reply (a sentence heard as two turns, so
        answered twice, counts once)."""
        return [
            min(run.said_turns, len(reply_latencies(record)) if record else 0)
            for run, record in zip(self.runs, self.records, strict=True)
        ]

    @property
    def turns_on_record(self) -> int:
        return sum(self._on_record())

    def _lost(self) -> list[int]:
        """Per call, its said turns that went unanswered or are not on record with a reply."""
        return [
            run.said_turns - min(run.answered_turns, kept)
            for run, kept in zip(self.runs, self._on_record(), strict=True)
        ]

    @property
    def lost_turns(self) -> int:
        return sum(self._lost())

    def by_minute(self) -> list[dict[str, Any]]:
        """For each minute of the soak, the turns said in it that were answered and not, and
        the p50 and p95 voice to voice the callers heard: whether the stack kept up throughout."""
        heard: dict[int, list[float]] = {}
        unanswered: Counter[int] = Counter()
        for run in self.runs:
            for turn, at in enumerate(run.said_at):
                minute = int((at - self.started_at) // 60) + 1
                if turn < run.answered_turns:
                    heard.setdefault(minute, []).append(run.caller_voice_to_voice_ms[turn])
                else:
                    unanswered[minute] += 1
        return [
            {
                "minute": minute,
                "answered": len(heard.get(minute, [])),
                "unanswered": unanswered[minute],
                **percentiles(heard.get(minute, []), "p50", "p95"),
            }
            for minute in sorted(heard.keys() | unanswered.keys())
        ]

    def summary(self) -> dict[str, Any]:
        """The figures, as the results file holds them."""
        latencies = [lat for record in self.records if record for lat in reply_latencies(record)]
        timed = [lat for lat in latencies if lat["endpoint_ms"] is not None]
        return {
            "plan": {
                "calls": self.plan.calls,
                "duration_s": self.plan.duration_s,
                "warmup_s": self.plan.warmup_s,
                "turns_per_call": self.plan.turns_per_call,
            },
            "calls": {
                "started": len(self.runs),
                "completed": self.calls_completed,
                "refused": len(self.refused),
            },
            "turns": {
                "said": self.turns_said,
                "answered": self.turns_answered,
                "on_record": self.turns_on_record,
                "lost": self.lost_turns,
            },
            "calls_with_lost_turns": [
                run.call_sid for run, lost in zip(self.runs, self._lost(), strict=True) if lost
            ][:20],
            "errors": {"count": len(self.errors), "first": self.errors[:20]},
            "call_errors": dict(
                Counter(run.error for run in self.runs if run.error) + Counter(self.refused)
            ),
            "memory_mb": {
                name: {
                    "start": use.start_mb,
                    "end": use.end_mb,
                    "max": use.max_mb,
                    "growth_per_min": use.growth_mb_per_min,
                    "flat": None if name == BROKER else use.flat,
                }
                for name, use in self.processes.items()
            },
            "cpu_cores": {name: use.cpu_cores for name, use in self.processes.items()},
            "flat_mb_per_min": FLAT_MB_PER_MIN,
            "voice_to_voice_ms": percentiles(
                [ms for run in self.runs for ms in run.caller_voice_to_voice_ms], "p50", "p95"
            ),
            "voice_to_voice_by_minute_ms": self.by_minute(),
            "platform_overhead_ms": percentiles(
                [lat["voice_to_voice_ms"] - lat["endpoint_ms"] for lat in timed], "p50", "p95"
            ),
            "stages_ms": {
                stage: percentiles(
                    [lat[f"{stage}_ms"] for lat in latencies if lat[f"{stage}_ms"] is not None],
                    "p50",
                    "p95",
                )
                for stage in STAGES
            },
            "seconds": round(self.seconds, 1),
            "callers_cpu_cores": self.callers_cpu_cores,
        }


async def soak(stack: RunningStack, speech: bytes, plan: SoakPlan) -> SoakResult:
    """Keep `plan.calls` calls saying `speech` going on `stack` for `plan.duration_s`; let the
    calls in progress finish, wait for their records, and tell what happened."""
    started, started_at, callers_cpu_s = time.monotonic(), time.time(), time.process_time()
    end = started + plan.duration_s
    runs: list[CallRun] = []
    refused: list[str] = []
    samples = ProcessSamples()

    async def sample_processes() -> None:
        while True:
            samples.take(stack, time.monotonic() - started)
            if time.monotonic() >= end:
                return
            await asyncio.sleep(min(plan.sample_every_s, max(0.0, end - time.monotonic())))

    in_progress = 0

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(plan.progress_every_s)
            log.info(
                "  %.0f s: %d calls ended (%d failed), %d in progress, %d refused; %d turns said, "
                "%d answered",
                time.monotonic() - started,
                len(runs),
                sum(1 for run in runs if run.error),
                in_progress,
                len(refused),
                sum(run.said_turns for run in runs),
                sum(run.answered_turns for run in runs),
            )

    async def line(index: int) -> None:
        nonlocal in_progress
        await asyncio.sleep(index * plan.stagger_s)
        while time.monotonic() < end:
            in_progress += 1
            try:
                runs.append(await converse(stack, speech, turns=plan.turns_per_call))
            except CALL_REFUSED as exc:
                refused.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(REFUSED_CALL_PAUSE_S)
            finally:
                in_progress -= 1

    sampler = asyncio.create_task(sample_processes())
    progress = asyncio.create_task(report_progress())
    try:
        await asyncio.gather(*(line(i) for i in range(plan.calls)))
        await sampler
    finally:
        sampler.cancel()
        progress.cancel()
    # Asked for once the calls are over, so that the asking adds nothing to the load measured.
    found = await records(stack.base_url, runs)
    seconds = time.monotonic() - started
    return SoakResult(
        plan=plan,
        runs=runs,
        refused=refused,
        records=found,
        errors=logged_errors(stack.log_path),
        processes=samples.use_after(plan.warmup_s),
        started_at=started_at,
        seconds=seconds,
        callers_cpu_cores=round((time.process_time() - callers_cpu_s) / seconds, 2),
    )
