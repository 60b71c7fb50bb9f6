"""Many simulated calls at once against a running stack: what each turn cost, and what was lost."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from voicebus_bench.conversations import CallRun, converse, records, reply_latencies
from voicebus_bench.stats import percentiles
from voicebus_devstack.harness import RunningStack


@dataclass
class LevelResult:
    calls: int
    turns_expected: int
    turns_recorded: int
    latencies: list[dict[str, float]]
    """Each recorded reply's latency breakdown."""
    runs: list[CallRun]

    @property
    def voice_to_voice_ms(self) -> list[float]:
        return [latency["voice_to_voice_ms"] for latency in self.latencies]

    @property
    def overhead_ms(self) -> list[float]:
        """Voice-to-voice less the end-of-turn wait: what the platform and providers added."""
        return [lat["voice_to_voice_ms"] - lat["endpoint_ms"] for lat in self.latencies]

    @property
    def lost_turns(self) -> int:
        """Turns said but not answered on record (a sentence heard as two turns is not a loss)."""
        return max(0, self.turns_expected - self.turns_recorded)

    def passes(self, *, metric: str, p95_target_ms: float) -> bool:
        samples = self.overhead_ms if metric == "overhead" else self.voice_to_voice_ms
        p95 = percentiles(samples, "p95")["p95"]
        return self.lost_turns == 0 and p95 is not None and p95 <= p95_target_ms


async def run_level(
    *, stack: RunningStack, speech: bytes, calls: int, turns: int, stagger_s: float
) -> LevelResult:
    """`calls` callers, starting `stagger_s` apart, each saying `speech` `turns` times."""

    async def caller(index: int) -> CallRun:
        await asyncio.sleep(index * stagger_s)
        return await converse(stack, speech, turns=turns)

    runs = await asyncio.gather(*(caller(i) for i in range(calls)))
    kept = await records(stack.base_url, runs)
    latencies = [latency for record in kept if record for latency in reply_latencies(record)]
    return LevelResult(
        calls=calls,
        turns_expected=calls * turns,
        turns_recorded=len(latencies),
        latencies=latencies,
        runs=runs,
    )
