"""The benchmark code runs: each measurement on a tiny scale, and the report it writes.

`make bench` itself never runs in `make test`; this only proves its parts work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebus_bench import first_sentence, report
from voicebus_bench.conversations import jitter_ms, reply_latencies
from voicebus_bench.hop import measure_hops
from voicebus_bench.inprocess import InProcessPipeline
from voicebus_bench.retrieval import demo_questions, measure_recall
from voicebus_bench.stats import percentiles
from voicebus_bench.stt_cost import measure_stt_cost
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.instant import InstantRecognizer


def test_percentiles_of_samples() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentiles(samples, "p50", "p99") == {"p50": 50.5, "p99": 99.0}
    assert percentiles([], "p95") == {"p95": None}


def test_jitter_counts_only_lateness_after_the_lead_burst() -> None:
    gaps = [[0.1, 0.1, 20.0, 25.0, 19.0, 40.0]]
    assert jitter_ms(gaps, lead_frames=2) == [0.0, 5.0, 0.0, 20.0]


def test_reply_latencies_skip_the_greeting() -> None:
    latency = {"voice_to_voice_ms": 900.0, "endpoint_ms": 500.0}
    record = {
        "turns": [
            {"role": "agent", "in_reply_to": None, "latency": {"voice_to_voice_ms": None}},
            {"role": "user", "in_reply_to": None, "latency": None},
            {"role": "agent", "in_reply_to": "t1", "latency": latency},
        ]
    }
    assert reply_latencies(record) == [latency]


async def test_hops_are_measured_over_the_broker(kafka_bootstrap: str) -> None:
    hops = await measure_hops(kafka_bootstrap, count=20, rate_per_s=100, fetch_max_wait_ms=5)
    assert len(hops) == 20
    assert all(hop >= 0 for hop in hops)


async def test_the_in_process_pipeline_answers_a_turn() -> None:
    pipeline = InProcessPipeline.with_instant_providers()
    overhead_ms = await pipeline.turn(telephone_speech("Hello, can you hear me?"))
    assert overhead_ms > 0


async def test_time_to_first_sentence_is_measured_with_the_fake_llm() -> None:
    paced_ms = await first_sentence.fake_pacing_ms(repeats=1)
    times = await first_sentence.in_process(turns=2)
    section = first_sentence.summary(paced_ms=paced_ms, inprocess=times, over_bus=[])

    assert len(times.text_ms) == len(times.after_tool_call_ms) == 2
    assert section["turns"] == 2
    assert section["pacing"]["pieces"] == 10  # "Yes, a table for two at seven is free. "
    for name in ("in_process", "after_tool_call"):
        measured, ours = section[f"{name}_ms"], section[f"{name}_overhead_ms"]
        assert measured["p50"] is not None
        assert ours["p50"] == pytest.approx(measured["p50"] - paced_ms, abs=0.2)
    assert section["over_bus_ms"] == {"p50": None, "p95": None}


def test_stt_cost_is_measured_per_length() -> None:
    costs = measure_stt_cost(InstantRecognizer(text="hi"), lengths_s=range(1, 3), repeats=2)
    assert [c.seconds for c in costs] == [1, 2]
    assert all(len(c.compute_ms) == len(c.sketch_ms) == 2 for c in costs)


def test_the_report_writes_both_files_and_the_readme_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\nrest\n")
    p = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "p999": 4.0}
    results = {
        "machine": {"cores": 2, "python": "3.11", "date": "today"},
        "duration_s": 1.0,
        "capacity_targets_ms": {"instant_overhead_p95": 120.0, "local_voice_to_voice_p95": 3e3},
        "hop_ms": p,
        "hop_under_load_ms": {**p, "calls": 20},
        "platform_overhead_ms": p,
        "inprocess_overhead_ms": p,
        "voice_to_voice_local_ms": p,
        "stt_utterance_ms": p,
        "stt_3s_utterance_ms": {"p50": 600.0, "p95": 700.0},
        "outbound_jitter_ms": {"p99": 1.0},
        "stage_breakdown_local_ms": {"endpoint": 500.0, "stt": 1000.0},
        "max_concurrent_calls": {"instant": 30, "local": 2},
        "stt_rtf": 0.3,
        "bus_overhead_ratio": 5.0,
        "endpointing": {
            "utterances": 10,
            "paused": 6,
            "pause_ms": 600,
            "vad_only": {"cut_off_rate": 1.0, "mean_wait_ms": 200.0},
            "smart": {"cut_off_rate": 0.25, "mean_wait_ms": 400.0},
        },
        "first_sentence_fake_llm": {
            "pacing": {"piece_chars": 4, "piece_delay_ms": 20.0, "pieces": 10, "paced_ms": 201.5},
            "turns": 30,
            "in_process_ms": {"p50": 211.0, "p95": 214.0},
            "in_process_overhead_ms": {"p50": 9.5, "p95": 12.5},
            "after_tool_call_ms": {"p50": 215.0, "p95": 221.0},
            "after_tool_call_overhead_ms": {"p50": 13.5, "p95": 19.5},
            "over_bus_ms": {"p50": 232.0, "p95": 245.0},
            "over_bus_overhead_ms": {"p50": 30.5, "p95": 43.5},
        },
    }
    table = report.write(results, tmp_path / "results", readme=readme)

    assert json.loads((tmp_path / "results" / "latest.json").read_text()) == results
    assert (tmp_path / "results" / "latest.md").read_text() == table
    text = readme.read_text()
    assert table in text
    assert "old" not in text
    assert text.startswith("intro\n")
    assert "cuts the caller off in 25% of the paused ones with smart endpointing (100%" in table
    assert text.endswith("rest\n")
    assert "<= 500.0 missed" in table  # the 3 s utterance took 600 ms
    assert "| First sentence, fake LLM, in one process (ms) | 211.0 | 214.0 |" in table
    assert "200.0 ms of each figure above (201.5 ms as this machine's timers" in table
    assert "published, 30.5 / 43.5 ms." in table
    assert ">= 20 met" in table


async def test_retrieval_on_the_demo_questions_is_measured_and_finds_most_answers() -> None:
    recall = await measure_recall(k=3)

    assert recall.found + len(recall.missed) == len(demo_questions()) == 30
    # Measured 0.73 (22 of 30): a drop below 0.6 means retrieval or the content broke.
    assert recall.rate >= 0.6, recall.missed
