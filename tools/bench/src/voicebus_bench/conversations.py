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


@dataclass
class CallRun:
    """What one simulated caller measured on its side of the line."""

    call_sid: str
    answered_turns: int = 0
    caller_voice_to_voice_ms: list[float] = field(default_factory=list)
    """From the caller's last speech frame sent to the first reply frame received."""
    reply_frame_gaps_ms: list[list[float]] = field(default_factory=list)
    """Per reply, the gaps between consecutive received frames."""
    error: str | None = None


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
        try:
            await caller.wait_for_agent_audio(after=0.0, quiet_s=quiet_s, timeout_s=timeout_s)
            for _ in range(turns):
                finished = await caller.say(speech)
                await caller.wait_for_agent_audio(
                    after=finished, quiet_s=quiet_s, timeout_s=timeout_s
                )
                reply_frames = [at for at, _ in caller.heard.frames if at >= finished]
                run.caller_voice_to_voice_ms.append((reply_frames[0] - finished) * 1000.0)
                run.reply_frame_gaps_ms.append(
                    [(b - a) * 1000.0 for a, b in itertools.pairwise(reply_frames)]
                )
                run.answered_turns += 1
        except TimeoutError as exc:
            run.error = str(exc)
    return run


async def records(
    base_url: str, call_sids: list[str], *, answered: int, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Each call's record, waiting until the replies' latencies have arrived."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while time.monotonic() < deadline:
            for sid in call_sids:
                if sid in found:
                    continue
                response = await client.get(f"/api/calls/{sid}")
                if response.status_code == 200:
                    found[sid] = response.json()
            if sum(len(reply_latencies(r)) for r in found.values()) >= answered:
                break
            await asyncio.sleep(0.5)
    return list(found.values())


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
