"""A short soak: eight calls at once for 45 s, each replaced by a new one when it hangs up.

The stack runs with instant providers (`make soak` runs the long version, 30 calls for ten
minutes, and reports its figures); here nothing may be lost, nothing may log an error, and no
process's memory may run away.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebus_bench.conversations import INSTANT_PROVIDERS
from voicebus_bench.soak import BROKER, SoakPlan, soak
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech

from .conftest import running_stack, stopped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PLAN = SoakPlan(
    calls=8, duration_s=45.0, warmup_s=15.0, turns_per_call=2, sample_every_s=5.0, stagger_s=0.5
)
SENTENCE = "Hello, can you hear me?"
MEMORY_GROWTH_BOUND = 1.5
"""Each process's RSS at the end under this multiple of its RSS after the warm-up: loose, as
45 noisy seconds tell little of a trend; it catches memory that runs away, such as each call's
state kept forever. `make soak` measures the trend over ten minutes."""


@pytest.fixture
def instant_stack(tmp_path: Path) -> Iterator[RunningStack]:
    stack = running_stack(tmp_path, INSTANT_PROVIDERS)
    yield stack
    stopped(stack)


async def test_calls_come_and_go_losing_no_turn_logging_no_error(
    instant_stack: RunningStack,
) -> None:
    result = await soak(instant_stack, telephone_speech(SENTENCE), PLAN)
    figures = result.summary()

    assert result.refused == [], figures
    assert len(result.runs) > PLAN.calls, "no call ended and was replaced by a new one"
    assert [run.error for run in result.runs if run.error] == []
    assert result.calls_completed == len(result.runs), figures
    assert result.turns_said == PLAN.turns_per_call * len(result.runs)
    assert result.turns_answered == result.turns_said, figures
    assert result.turns_on_record == result.turns_said, figures
    assert result.errors == []
    growing = {
        name: use
        for name, use in result.processes.items()
        if name != BROKER and use.end_mb >= MEMORY_GROWTH_BOUND * use.start_mb
    }
    assert growing == {}, figures["memory_mb"]
    assert set(result.processes) >= {"gateway", "media", "stt", "agent", "tts", "analytics"}
