"""The soak's bookkeeping: errors found in the stack's log, memory trends, turns lost, its report.

The soak itself runs against a real stack in tests/e2e/test_soak.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from voicebus_bench import report
from voicebus_bench.conversations import STAGES, CallRun
from voicebus_bench.soak import MB, ProcessSamples, Sample, SoakPlan, SoakResult, logged_errors

LOG = """\
stack     | 2026-11-25 18:04:49,534 started kafka (pid 27289)
kafka     | 2026-11-25T18:05:02.123456Z ERROR tansu_server: connection reset
agent     | 2026-11-25 18:05:06,573 WARNING voicebus_agent.app: slow model
agent     | 2026-11-25 18:05:07,001 INFO  voicebus_agent.app: the caller said ERROR twice
media     | 2026-11-25 18:05:08,002 ERROR voicebus_media.app: frame not processed
media     | Traceback (most recent call last):
gateway   | ERROR:    Exception in ASGI application
tts       | 2026-11-25 18:05:09,003 CRITICAL voicebus_tts.app: out of voices
stack     | 2026-11-25 18:05:10,004 stt exited with code 1: starting it again in 1 s
redis     | 27295:M 25 Nov 2026 18:04:50.046 # WARNING Memory overcommit must be enabled!
"""


def test_errors_are_the_lines_at_error_level_and_the_crashes(tmp_path: Path) -> None:
    log = tmp_path / "stack.log"
    log.write_text(LOG)

    assert [line.split("|")[0].strip() for line in logged_errors(log)] == [
        "kafka",
        "media",
        "gateway",
        "tts",
        "stack",
    ]


def test_memory_is_judged_after_the_warm_up_by_its_trend() -> None:
    samples = ProcessSamples(
        by_process={
            "agent": [
                Sample(0.0, 50 * MB, 1.0),
                Sample(60.0, 100 * MB, 10.0),
                Sample(120.0, 101 * MB, 40.0),
                Sample(180.0, 100 * MB, 70.0),
            ],
            "analytics": [
                Sample(60.0, 100 * MB, 5.0),
                Sample(120.0, 103 * MB, 5.0),
                Sample(180.0, 106 * MB, 5.0),
            ],
            "media": [Sample(0.0, 40 * MB, 1.0)],
        }
    )

    uses = samples.use_after(60.0)

    assert set(uses) == {"agent", "analytics"}  # media has no sample after the warm-up
    agent, analytics = uses["agent"], uses["analytics"]
    assert (agent.start_mb, agent.end_mb, agent.max_mb) == (100.0, 100.0, 101.0)
    assert agent.growth_mb_per_min == pytest.approx(0.0)
    assert agent.flat
    assert agent.cpu_cores == 0.5
    assert analytics.growth_mb_per_min == pytest.approx(3.0)
    assert not analytics.flat
    assert analytics.cpu_cores == 0.0


def latency(ms: float) -> dict[str, float | None]:
    """A reply's latency on record: all of it the end-of-turn wait but 50 ms, the stages after
    speech recognition not stamped."""
    stages: dict[str, float | None] = {f"{stage}_ms": None for stage in STAGES}
    return stages | {"voice_to_voice_ms": ms, "endpoint_ms": ms - 50.0, "stt_ms": 10.0}


def call_record(replies: int) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [{"role": "agent", "in_reply_to": None, "latency": None}]
    for i in range(replies):
        turns += [
            {"role": "user", "in_reply_to": None, "latency": None},
            {"role": "agent", "in_reply_to": f"t{i}", "latency": latency(700.0 + i)},
        ]
    return {"turns": turns}


START = 1_000_000.0
"""When the soaks below began (wall clock)."""


def caller(sid: str, *, said: int, answered: int, error: str | None = None) -> CallRun:
    """A call whose turns were said 40 s apart from START on, the first `answered` heard."""
    return CallRun(
        call_sid=sid,
        said_at=[START + 40.0 * (turn + 1) for turn in range(said)],
        answered_turns=answered,
        caller_voice_to_voice_ms=[800.0 + 100.0 * turn for turn in range(answered)],
        error=error,
    )


def test_a_turn_is_lost_when_unanswered_or_not_on_record() -> None:
    result = SoakResult(
        plan=SoakPlan(calls=2, turns_per_call=2),
        runs=[
            caller("CA1", said=2, answered=2),
            caller("CA2", said=2, answered=2),  # one of its sentences was heard as two turns
            caller("CA3", said=2, answered=2),  # never recorded
            caller("CA4", said=2, answered=1, error="no reply heard to turn 2 within 60 s"),
            caller("CA5", said=0, answered=0, error="no greeting heard within 60 s"),
        ],
        refused=["VoiceWebhookError: voice webhook answered 503"],
        records=[call_record(2), call_record(3), None, call_record(2), call_record(0)],
        errors=[],
        processes={},
        started_at=START,
        seconds=100.0,
        callers_cpu_cores=0.1,
    )

    assert result.turns_said == 8
    assert result.turns_answered == 7
    assert result.turns_on_record == 6
    assert result.lost_turns == 3  # CA3's two, CA4's second
    assert result.calls_completed == 3
    summary = result.summary()
    assert summary["calls"] == {"started": 5, "completed": 3, "refused": 1}
    assert summary["calls_with_lost_turns"] == ["CA3", "CA4"]
    assert summary["call_errors"] == {
        "no reply heard to turn 2 within 60 s": 1,
        "no greeting heard within 60 s": 1,
        "VoiceWebhookError: voice webhook answered 503": 1,
    }
    # Turns said at 40 s (minute 1) and 80 s (minute 2); CA4's second went unanswered.
    assert summary["voice_to_voice_by_minute_ms"] == [
        {"minute": 1, "answered": 4, "unanswered": 0, "p50": 800.0, "p95": 800.0},
        {"minute": 2, "answered": 3, "unanswered": 1, "p50": 900.0, "p95": 900.0},
    ]
    assert summary["stages_ms"]["stt"] == {"p50": 10.0, "p95": 10.0}
    assert summary["stages_ms"]["send"] == {"p50": None, "p95": None}
    assert summary["platform_overhead_ms"] == {"p50": 50.0, "p95": 50.0}


def test_the_soak_report_fills_the_readme_soak_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    start, end = report.readme_markers("soak")
    bench_start, bench_end = report.readme_markers("bench")
    readme.write_text(f"{bench_start}\nbench\n{bench_end}\n{start}\nold\n{end}\n")
    result = SoakResult(
        plan=SoakPlan(calls=30, duration_s=600.0, warmup_s=60.0, turns_per_call=3),
        runs=[caller("CA1", said=3, answered=3)],
        refused=[],
        records=[call_record(3)],
        errors=["media     | 2026-11-25 18:05:08,002 ERROR voicebus_media.app: oops"],
        processes=ProcessSamples(
            by_process={
                "kafka": [Sample(60.0, 30 * MB, 0.0), Sample(120.0, 60 * MB, 6.0)],
                "gateway": [Sample(60.0, 100 * MB, 10.0), Sample(120.0, 100 * MB, 40.0)],
            }
        ).use_after(60.0),
        started_at=START,
        seconds=612.0,
        callers_cpu_cores=0.4,
    )
    machine = {"cores": 2, "python": "3.11", "date": "today", "load_average": 1.5}
    # As the results file holds them: its keys sorted.
    results = json.loads(json.dumps({"machine": machine, **result.summary()}, sort_keys=True))

    table = report.publish(
        results,
        report.soak_markdown(results),
        tmp_path / "results",
        name="soak",
        readme=readme,
        section="soak",
    )

    assert (tmp_path / "results" / "soak.md").read_text() == table
    text = readme.read_text()
    assert f"{start}\n{table}{end}" in text
    assert "old" not in text
    assert "\nbench\n" in text
    assert "30 concurrent simulated Twilio calls for 10 min" in table
    assert "| 1 | 1 | 0 | 3 | 3 | 3 | 0 | 1 |" in table
    assert "| gateway | 100.0 | 100.0 | 100.0 | 0.00 | yes | 0.50 |" in table
    assert (
        "| kafka | 30.0 | 60.0 | 60.0 | 30.00 | not judged: it keeps every message | 0.10 |"
        in table
    )
    assert "ERROR voicebus_media.app: oops" in table
    assert "The simulated callers used 0.40 cores" in table
    assert "p50 / p95 ms: endpoint 651.0 / 651.9, stt 10.0 / 10.0, first_text n/a / n/a," in table
    assert "Minute by minute, voice to voice p95 as heard (ms)" in table
    assert ": 1: 800.0, 2: 900.0, 3: 1000.0." in table
