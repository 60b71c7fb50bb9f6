"""Simulated phone calls against a running stack, and the records the stack kept of them."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from voicebus_devstack.harness import RunningStack

FRAME_MS = 20.0
INSTANT_PROVIDERS = {"VOICEBUS_STT_PROVIDER": "instant", "VOICEBUS_TTS_PROVIDER": "instant"}
"""The stack's environment for providers that answer at once: what a turn then costs is the
platform's own work."""
RECORD_WAIT_S = 30.0
"""How long a call's record may take to show its replies once the caller hung up."""
RECORDS_AT_ONCE = 25
STAGES = ("endpoint", "stt", "first_text", "first_audio", "send")
"""The stages of a reply's latency breakdown on record, in order (`<stage>_ms`)."""


@dataclass
class CallRun:
    """What one simulated caller measured on its side of the line."""

    call_sid: str
    said_at: list[float] = field(default_factory=list)
    """When the caller finished saying each turn it said (wall clock)."""
    answered_turns: int = 0
    """Turns after which the caller heard the agent's reply."""
    caller_voice_to_voice_ms: list[float] = field(default_factory=list)
    """Per answered turn, from the caller's last speech frame sent to the first reply frame
    received."""
    reply_frame_gaps_ms: list[list[float]] = field(default_factory=list)
    """Per reply, the gaps between consecutive received frames."""
    error: str | None = None
    """What the caller waited for in vain, if anything."""

    @property
    def said_turns(self) -> int:
        return len(self.said_at)


async def converse(
    stack: RunningStack,
    speech: bytes,
    *,
    turns: int,
    quiet_s: float = 1.0,
    timeout_s: float = 60.0,
) -> CallRun:
    """Phone `stack` the way Twilio does, hear the greeting, then `turns` times say `speech`
    and hear the reply."""
    async with await stack.phone_call() as caller:
        run = CallRun(call_sid=caller.call_sid)
        awaited = "no greeting heard"
        try:
            await caller.wait_for_agent_audio(after=0.0, quiet_s=quiet_s, timeout_s=timeout_s)
            for turn in range(1, turns + 1):
                awaited = f"could not say turn {turn}"
                # Bounded too: a caller whose line went dead would wait forever to be done talking.
                finished = await asyncio.wait_for(caller.say(speech), timeout_s)
                run.said_at.append(finished)
                awaited = f"no reply heard to turn {turn}"
                await caller.wait_for_agent_audio(
                    after=finished, quiet_s=quiet_s, timeout_s=timeout_s
                )
                reply_frames = [at for at, _ in caller.heard.frames if at >= finished]
                run.caller_voice_to_voice_ms.append((reply_frames[0] - finished) * 1000.0)
                run.reply_frame_gaps_ms.append(
                    [(b - a) * 1000.0 for a, b in itertools.pairwise(reply_frames)]
                )
                run.answered_turns += 1
        except TimeoutError:
            run.error = f"{awaited} within {timeout_s:.0f} s"
    return run


async def call_record(
    client: httpx.AsyncClient, run: CallRun, *, timeout_s: float = RECORD_WAIT_S
) -> dict[str, Any] | None:
    """The record of `run`'s call once it holds a reply's latency for each turn the caller
    said; after `timeout_s`, the record as it stands (None if the call was never recorded)."""
    deadline = time.monotonic() + timeout_s
    record: dict[str, Any] | None = None
    while True:
        try:
            response = await client.get(f"/api/calls/{run.call_sid}")
        except httpx.TransportError:  # analytics too busy to answer in time: ask again
            response = None
        if response is not None and response.status_code == 200:
            record = response.json()
            if len(reply_latencies(record)) >= run.said_turns:
                return record
        if time.monotonic() >= deadline:
            return record
        await asyncio.sleep(0.5)


async def records(
    base_url: str,
    runs: list[CallRun],
    *,
    timeout_s: float = RECORD_WAIT_S,
    at_once: int = RECORDS_AT_ONCE,
) -> list[dict[str, Any] | None]:
    """The record of each call of `runs` (`call_record`), in their order; `at_once` asked for at
    a time, so that hundreds of calls do not flood the API."""
    limit = asyncio.Semaphore(at_once)

    async def record_of(client: httpx.AsyncClient, run: CallRun) -> dict[str, Any] | None:
        async with limit:
            return await call_record(client, run, timeout_s=timeout_s)

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await asyncio.gather(*(record_of(client, run) for run in runs))


def reply_latencies(record: dict[str, Any]) -> list[dict[str, float]]:
    """The latency breakdowns of the agent's replies to the caller (the greeting has none)."""
    return [
        turn["latency"]
        for turn in record["turns"]
        if turn["role"] == "agent"
        and turn["in_reply_to"]
        and turn["latency"]
        and turn["latency"]["voice_to_voice_ms"] is not None
    ]


def jitter_ms(gaps_per_reply: list[list[float]], *, lead_frames: int) -> list[float]:
    """How late each frame came beyond its 20 ms slot, after the reply's initial lead burst."""
    return [max(0.0, gap - FRAME_MS) for gaps in gaps_per_reply for gap in gaps[lead_frames:]]
