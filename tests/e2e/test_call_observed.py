"""One call as an operator sees it: one trace through every service, and on record whole even
when analytics crashes in the middle of it.

A stack of its own: PostgreSQL, traces exported over OTLP/HTTP to a local collector, and a
crashed service started again by the supervisor after RESTART_DELAY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import pytest

from voicebus_contracts.topics import AUDIO_IN
from voicebus_devstack.caller import TwilioCaller
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.loop_thread import in_thread
from voicebus_devstack.otlp import ExportedSpan, FakeCollector
from voicebus_devstack.settings import SERVICES
from voicebus_devstack.speech import telephone_speech
from voicebus_runtime.tracing import CALL_ID

from .conftest import record_of, replies_timed, running_stack, stopped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RESTART_DELAY_S = 12.0
"""Long enough that the call's second turn happens while analytics is down (on a machine that
is not overloaded)."""
FIRST_TURN = "Please book a table for two people tomorrow evening."
SECOND_TURN = "I would like to cancel my dentist appointment on Friday."
WAIT_S = 90.0
"""Guards against a hung test only, as every wait here."""


@pytest.fixture(scope="module")
def collector() -> Iterator[FakeCollector]:
    # In a thread of its own: the module's stack outlives each test's event loop.
    with in_thread(FakeCollector()) as collector:
        yield collector


@pytest.fixture(scope="module")
def observed_stack(
    tmp_path_factory: pytest.TempPathFactory,
    new_postgres_database: Callable[[], contextlib.AbstractContextManager[str]],
    collector: FakeCollector,
) -> Iterator[RunningStack]:
    with new_postgres_database() as database_url:
        env = {
            "VOICEBUS_DATABASE_URL": database_url,
            "VOICEBUS_OTLP_ENDPOINT": collector.base_url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms between span exports, not OTel's 5 s
            "VOICEBUS_RESTART_DELAY_S": str(RESTART_DELAY_S),
        }
        stack = running_stack(tmp_path_factory.mktemp("observed"), env)
        yield stack
        stopped(stack)


async def say_and_hear(caller: TwilioCaller, sentence: str) -> None:
    finished = await caller.say(telephone_speech(sentence))
    await caller.wait_for_agent_audio(after=finished, quiet_s=1.5)


async def spans_of_call(
    collector: FakeCollector, call_id: str, services: tuple[str, ...]
) -> list[ExportedSpan]:
    """The spans naming `call_id`, once every service of `services` has sent some and every
    span's parent has arrived (spans come in batches, each process on its own schedule)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        spans = [s for s in collector.spans if s.attribute(CALL_ID) == call_id]
        sent = {s.service for s in spans}
        if sent >= set(services) and not orphans(spans):
            return spans
        assert time.monotonic() < deadline, f"spans of {call_id}: from {sent}, {orphans(spans)}"
        await asyncio.sleep(0.2)


def orphans(spans: list[ExportedSpan]) -> list[str]:
    """The spans whose parent is not among `spans`."""
    ids = {s.span.span_id for s in spans}
    return [
        f"{s.service}: {s.span.name}"
        for s in spans
        if s.span.parent_span_id and s.span.parent_span_id not in ids
    ]


async def test_one_call_is_one_trace_through_every_service(
    observed_stack: RunningStack, collector: FakeCollector
) -> None:
    phone = await observed_stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        await say_and_hear(caller, FIRST_TURN)
    await record_of(observed_stack.base_url, phone.call_sid, lambda r: replies_timed(r) == 1)

    spans = await spans_of_call(collector, phone.call_sid, SERVICES)
    roots = [s for s in spans if s.service == "gateway" and not s.span.parent_span_id]
    assert [root.span.name for root in roots] == ["call"]
    traces = {s.trace_id for s in spans}
    assert traces == {roots[0].trace_id}, f"{len(traces)} traces: {spans_by_trace(spans)}"
    # The caller's audio carries the trace but makes no span (50 frames a second).
    assert not [s.span.name for s in spans if s.span.name.startswith(AUDIO_IN.name)]


def spans_by_trace(spans: list[ExportedSpan]) -> dict[str, set[str]]:
    """Each trace's spans, as `service: span name`, to show where a trace broke."""
    traces: dict[str, set[str]] = {}
    for s in spans:
        traces.setdefault(s.trace_id, set()).add(f"{s.service}: {s.span.name}")
    return traces


async def test_analytics_killed_mid_call_loses_and_doubles_nothing(
    observed_stack: RunningStack,
) -> None:
    stack = observed_stack
    phone = await stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        await say_and_hear(caller, FIRST_TURN)
        await asyncio.to_thread(stack.kill, "analytics")
        await say_and_hear(caller, SECOND_TURN)

    record = await record_of(
        stack.base_url,
        phone.call_sid,
        lambda r: r["status"] == "completed" and replies_timed(r) == 2 and r["summary"],
    )
    assert stack.process.poll() is None, stack.log_tail()
    # Analytics came back (after RESTART_DELAY_S: the second turn's events waited on the bus).
    assert any("started analytics again" in line for line in stack.output_of("stack"))
    user_turns = [t for t in record["turns"] if t["role"] == "user"]
    agent_turns = [t for t in record["turns"] if t["role"] == "agent"]
    assert len(user_turns) == 2
    assert len({t["turn_id"] for t in user_turns}) == 2
    assert len(agent_turns) == 3  # the greeting and two replies, each once
    assert [t["in_reply_to"] for t in agent_turns[1:]] == [t["turn_id"] for t in user_turns]
    assert record["summary"]
