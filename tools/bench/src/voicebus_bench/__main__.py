"""`voicebus-bench`: measure latency, bus overhead, capacity and STT cost; write the results.

Runs the real stack on the local broker twice (instant providers, then the local models), the
same pipeline in one process, the speech recognizer on its own, and the LLM responder against
the local fake LLM. Prints progress as it goes.

`voicebus-bench soak` instead keeps many calls going on the instant stack for minutes (`soak`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicebus_agent.settings import AgentSettings
from voicebus_bench import first_sentence, realtime, report
from voicebus_bench.capacity import run_level
from voicebus_bench.conversations import INSTANT_PROVIDERS, STAGES, jitter_ms
from voicebus_bench.endpointing import measure_endpointing
from voicebus_bench.first_sentence import InProcessTimes
from voicebus_bench.hop import measure_hops
from voicebus_bench.inprocess import InProcessPipeline
from voicebus_bench.retrieval import measure_recall
from voicebus_bench.soak import SoakPlan, soak
from voicebus_bench.stats import median, percentiles
from voicebus_bench.stt_cost import measure_stt_cost
from voicebus_devstack.fake_openai import PIECE_CHARS
from voicebus_devstack.fake_openai_realtime import FakeOpenAIRealtime
from voicebus_devstack.harness import RunningStack, start_stack, stop_stack
from voicebus_devstack.loop_thread import LoopThread
from voicebus_devstack.settings import EMBEDDED_BROKER_FETCH_MAX_WAIT_MS
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.app import load_recognizer
from voicebus_stt.ports import SpeechRecognizer
from voicebus_stt.settings import SttSettings

log = logging.getLogger("voicebus.bench")

LOCAL_SENTENCE = "Please book a table for two people tomorrow evening."
INSTANT_SENTENCE = "Hello, can you hear me?"
INSTANT_ENV = {**INSTANT_PROVIDERS, **first_sentence.STACK_ENV}
INSTANT_OVERHEAD_P95_TARGET_MS = 120.0
"""Capacity with instant providers: the most calls whose platform overhead p95 stays this low."""
LOCAL_VOICE_TO_VOICE_P95_TARGET_MS = 3000.0
"""Capacity with the local models: the most calls whose voice-to-voice p95 stays this low."""
PLAYBACK_LEAD_FRAMES = 5
"""The gateway sends 100 ms (5 frames) ahead at the start of a reply: not jitter."""


ENDPOINTING_PAUSE_S = 0.6
"""The mid-sentence pause of the end-of-turn measure: longer than media's end-of-turn silence."""


@dataclass(frozen=True)
class Plan:
    """How much of everything to measure: the full run, or a quick one that proves the code."""

    hop_count: int
    hop_rate_per_s: float
    stt_lengths_s: range
    stt_repeats: int
    inprocess_turns: int
    overhead_calls: int
    overhead_turns: int
    load_calls: int
    instant_levels: tuple[int, ...]
    local_calls: int
    local_turns: int
    local_levels: tuple[int, ...]
    first_sentence_turns: int


FULL = Plan(
    hop_count=2000,
    hop_rate_per_s=200,
    stt_lengths_s=range(1, 9),
    stt_repeats=5,
    inprocess_turns=30,
    overhead_calls=4,
    overhead_turns=5,
    load_calls=20,
    instant_levels=(10, 20, 30, 40, 50),
    local_calls=5,
    local_turns=2,
    local_levels=(2, 3, 4, 6),
    first_sentence_turns=30,
)
QUICK = Plan(
    hop_count=100,
    hop_rate_per_s=200,
    stt_lengths_s=range(1, 2),
    stt_repeats=1,
    inprocess_turns=2,
    overhead_calls=1,
    overhead_turns=1,
    load_calls=2,
    instant_levels=(2,),
    local_calls=0,
    local_turns=0,
    local_levels=(),
    first_sentence_turns=2,
)


def say(message: str, *args: object) -> None:
    log.info(message, *args)


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was as the measuring began."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": round(os.getloadavg()[0], 2),
    }


@contextmanager
def running_stack(workdir: Path, env: dict[str, str]) -> Iterator[RunningStack]:
    started = time.monotonic()
    stack = start_stack(workdir, env=env)
    say("stack up in %.0f s at %s", time.monotonic() - started, stack.base_url)
    try:
        yield stack
    finally:
        orphans = stop_stack(stack)
        if orphans:
            say("warning: processes left after stopping the stack: %s", orphans)


async def ramp(
    stack: RunningStack, speech: bytes, levels: tuple[int, ...], *, metric: str, target: float
) -> int:
    """Raise the number of concurrent calls until a level misses the target; the last that held."""
    held = 0
    for calls in levels:
        level = await run_level(
            stack=stack,
            speech=speech,
            calls=calls,
            turns=2,
            stagger_s=0.25,
        )
        samples = level.overhead_ms if metric == "overhead" else level.voice_to_voice_ms
        say(
            "  %d calls: %s p95 %s ms, %d/%d turns recorded",
            calls,
            metric,
            percentiles(samples, "p95")["p95"],
            level.turns_recorded,
            level.turns_expected,
        )
        if not level.passes(metric=metric, p95_target_ms=target):
            break
        held = calls
    return held


def measure_stt(plan: Plan, recognizer: SpeechRecognizer) -> dict[str, Any]:
    say("STT cost per utterance (%s s, %d runs each)", list(plan.stt_lengths_s), plan.stt_repeats)
    costs = measure_stt_cost(recognizer, lengths_s=plan.stt_lengths_s, repeats=plan.stt_repeats)
    by_length = {str(c.seconds): percentiles(c.compute_ms, "p50", "p95") for c in costs}
    return {
        "stt_utterance_ms": percentiles([ms for c in costs for ms in c.compute_ms], "p50", "p95"),
        "stt_by_length_ms": by_length,
        "stt_3s_utterance_ms": by_length.get("3", {"p50": None, "p95": None}),
        "stt_sketch_ms": percentiles([ms for c in costs for ms in c.sketch_ms], "p50", "p95"),
        "stt_rtf": median([ms / (c.seconds * 1000) for c in costs for ms in c.compute_ms]),
    }


async def measure_retrieval() -> dict[str, Any]:
    recalls = {k: await measure_recall(k=k) for k in (1, 3, 5)}
    return {
        "knowledge_recall": {f"at_{k}": round(r.rate, 3) for k, r in recalls.items()},
        "knowledge_questions": recalls[3].found + len(recalls[3].missed),
    }


async def measure_in_one_process(plan: Plan, speech: bytes) -> dict[str, Any]:
    say("the same pipeline in one process, instant providers (%d turns)", plan.inprocess_turns)
    pipeline = InProcessPipeline.with_instant_providers()
    overhead = [await pipeline.turn(speech) for _ in range(plan.inprocess_turns)]
    return {"inprocess_overhead_ms": percentiles(overhead, "p50", "p95", "p99")}


async def measure_first_sentence_in_process(plan: Plan) -> tuple[float, InProcessTimes]:
    """The fake LLM's own pacing to the first sentence, and the LLM responder's time to it."""
    say(
        "time to first sentence, fake LLM (%.0f ms per %d characters), LLM responder in one "
        "process (%d turns, then as many with a tool call first)",
        1000 * first_sentence.PIECE_DELAY_S,
        PIECE_CHARS,
        plan.first_sentence_turns,
    )
    paced_ms = await first_sentence.fake_pacing_ms()
    return paced_ms, await first_sentence.in_process(turns=plan.first_sentence_turns)


async def measure_instant_stack(
    plan: Plan, workdir: Path, speech: bytes
) -> tuple[dict[str, Any], list[float]]:
    """The instant stack's measures, and the time to first sentence over its bus (fake LLM)."""
    say("stack with instant providers")
    with running_stack(workdir / "instant", INSTANT_ENV) as stack:
        say("bus hop, idle (%d events at %.0f/s)", plan.hop_count, plan.hop_rate_per_s)
        hops = await measure_hops(
            stack.kafka_bootstrap,
            count=plan.hop_count,
            rate_per_s=plan.hop_rate_per_s,
            fetch_max_wait_ms=EMBEDDED_BROKER_FETCH_MAX_WAIT_MS,
        )
        say("platform overhead, %d calls x %d turns", plan.overhead_calls, plan.overhead_turns)
        level = await run_level(
            stack=stack,
            speech=speech,
            calls=plan.overhead_calls,
            turns=plan.overhead_turns,
            stagger_s=0.5,
        )
        say("bus hop under the load of %d calls streaming audio", plan.load_calls)
        load = asyncio.create_task(
            run_level(
                stack=stack,
                speech=speech,
                calls=plan.load_calls,
                turns=3,
                stagger_s=0.05,
            )
        )
        await asyncio.sleep(2.0)  # every caller connected and streaming
        loaded = await measure_hops(
            stack.kafka_bootstrap,
            count=plan.hop_count,
            rate_per_s=plan.hop_rate_per_s,
            fetch_max_wait_ms=EMBEDDED_BROKER_FETCH_MAX_WAIT_MS,
        )
        await load
        say("capacity with instant providers, levels %s", plan.instant_levels)
        held = await ramp(
            stack,
            speech,
            plan.instant_levels,
            metric="overhead",
            target=INSTANT_OVERHEAD_P95_TARGET_MS,
        )
        say("time to first sentence over the bus, fake LLM (%d turns)", plan.first_sentence_turns)
        over_bus = await first_sentence.over_the_bus(stack, turns=plan.first_sentence_turns)
    measures = {
        "hop_ms": percentiles(hops, "p50", "p99", "p999"),
        "hop_under_load_ms": {
            **percentiles(loaded, "p50", "p99", "p999"),
            "calls": plan.load_calls,
        },
        "platform_overhead_ms": percentiles(level.overhead_ms, "p50", "p95", "p99"),
        "max_concurrent_calls": {"instant": held},
    }
    return measures, over_bus


async def measure_realtime_stack(plan: Plan, workdir: Path, speech: bytes) -> dict[str, Any]:
    say("stack with a realtime agent, its model a local fake answering at once")
    with (
        LoopThread("realtime-model") as loop,
        loop.entered(FakeOpenAIRealtime(listens=True)) as model,
        running_stack(workdir / "realtime", realtime.stack_env(model)) as stack,
    ):
        return await realtime.measure(
            stack, speech, calls=plan.overhead_calls, turns=plan.overhead_turns
        )


async def measure_local_stack(plan: Plan, workdir: Path) -> dict[str, Any]:
    latencies: list[dict[str, float]] = []
    gaps: list[list[float]] = []
    held = None
    if plan.local_calls:
        say("stack with the local models")
        speech = telephone_speech(LOCAL_SENTENCE)
        with running_stack(workdir / "local", {}) as stack:
            say(
                "voice to voice, %d calls x %d turns, one call at a time",
                plan.local_calls,
                plan.local_turns,
            )
            for _ in range(plan.local_calls):
                level = await run_level(
                    stack=stack,
                    speech=speech,
                    calls=1,
                    turns=plan.local_turns,
                    stagger_s=0,
                )
                latencies += level.latencies
                gaps += [gap for run in level.runs for gap in run.reply_frame_gaps_ms]
            say("capacity with the local models, levels %s", plan.local_levels)
            held = await ramp(
                stack,
                speech,
                plan.local_levels,
                metric="voice_to_voice",
                target=LOCAL_VOICE_TO_VOICE_P95_TARGET_MS,
            )
    return {
        "voice_to_voice_local_ms": percentiles(
            [lat["voice_to_voice_ms"] for lat in latencies], "p50", "p95"
        ),
        "stage_breakdown_local_ms": {
            stage: median([lat[f"{stage}_ms"] for lat in latencies]) for stage in STAGES
        },
        "outbound_jitter_ms": percentiles(jitter_ms(gaps, lead_frames=PLAYBACK_LEAD_FRAMES), "p99"),
        "max_concurrent_calls": {"local": held},
    }


async def bench(plan: Plan, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    measured_on = machine()
    instant_speech = telephone_speech(INSTANT_SENTENCE)
    recognizer = load_recognizer(SttSettings(model_cache_dir=workdir / "whisper-base"))
    stt = measure_stt(plan, recognizer)
    say("end of turn on synthesized speech (%.0f ms pauses)", 1000 * ENDPOINTING_PAUSE_S)
    endpointing = measure_endpointing(
        recognizer,
        pause_s=ENDPOINTING_PAUSE_S,
        wait_s=AgentSettings().unfinished_turn_wait_ms / 1000,
    )
    say("knowledge base retrieval on the demo question set")
    retrieval = await measure_retrieval()
    inprocess = await measure_in_one_process(plan, instant_speech)
    paced_ms, llm_in_process = await measure_first_sentence_in_process(plan)
    instant, llm_over_bus = await measure_instant_stack(plan, workdir, instant_speech)
    speech_to_speech = await measure_realtime_stack(plan, workdir, instant_speech)
    local = await measure_local_stack(plan, workdir)
    overhead_p50 = instant["platform_overhead_ms"]["p50"]
    inprocess_p50 = inprocess["inprocess_overhead_ms"]["p50"]
    return {
        "machine": measured_on,
        "capacity_targets_ms": {
            "instant_overhead_p95": INSTANT_OVERHEAD_P95_TARGET_MS,
            "local_voice_to_voice_p95": LOCAL_VOICE_TO_VOICE_P95_TARGET_MS,
        },
        **stt,
        "endpointing": endpointing,
        **retrieval,
        **inprocess,
        **instant,
        **speech_to_speech,
        **local,
        "max_concurrent_calls": instant["max_concurrent_calls"] | local["max_concurrent_calls"],
        "first_sentence_fake_llm": first_sentence.summary(
            paced_ms=paced_ms, inprocess=llm_in_process, over_bus=llm_over_bus
        ),
        "bus_overhead_ratio": (
            round(overhead_p50 / inprocess_p50, 2) if overhead_p50 and inprocess_p50 else None
        ),
        "duration_s": round(time.monotonic() - started, 1),
    }


async def soak_instant_stack(
    plan: SoakPlan, workdir: Path, *, keep_log: Path | None
) -> dict[str, Any]:
    """The soak's figures; the stack's log copied to `keep_log`, if given, to look into."""
    measured_on = machine()
    say(
        "soak: %d concurrent calls of %d turns for %.0f s, instant providers",
        plan.calls,
        plan.turns_per_call,
        plan.duration_s,
    )
    with running_stack(workdir / "soak", INSTANT_PROVIDERS) as stack:
        result = await soak(stack, telephone_speech(INSTANT_SENTENCE), plan)
    if keep_log is not None:
        shutil.copyfile(stack.log_path, keep_log)
    return {"machine": measured_on, **result.summary()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="voicebus-bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--readme",
        type=Path,
        default=Path("README.md"),
        help="README whose bench (or soak) section is replaced by the new figures",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run that proves the benchmark code works"
    )
    commands = parser.add_subparsers(dest="command")
    soak_command = commands.add_parser(
        "soak",
        help="many concurrent calls on the instant stack for minutes: lost turns, errors, memory",
    )
    soak_command.add_argument("--calls", type=int, default=SoakPlan.calls)
    soak_command.add_argument("--minutes", type=float, default=SoakPlan.duration_s / 60)
    soak_command.add_argument("--turns", type=int, default=SoakPlan.turns_per_call)
    soak_command.add_argument(
        "--log", type=Path, help="keep the stack's log here, to look up the calls with lost turns"
    )
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="bench | %(message)s")
    log.setLevel(logging.INFO)
    readme = None if args.quick else args.readme
    with tempfile.TemporaryDirectory(prefix="voicebus-bench-") as tmp:
        if args.command == "soak":
            plan = SoakPlan(
                calls=args.calls,
                duration_s=args.minutes * 60,
                warmup_s=min(SoakPlan.warmup_s, args.minutes * 60 / 4),
                turns_per_call=args.turns,
            )
            results = asyncio.run(soak_instant_stack(plan, Path(tmp), keep_log=args.log))
            print(
                report.publish(
                    results,
                    report.soak_markdown(results),
                    args.out,
                    name="soak",
                    readme=readme,
                    section="soak",
                )
            )
        else:
            results = asyncio.run(bench(QUICK if args.quick else FULL, Path(tmp)))
            print(report.write(results, args.out, readme=readme))


if __name__ == "__main__":
    main()
