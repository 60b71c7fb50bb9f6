"""Recording calls through the core into the SQL store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from voicebus_analytics.sql_store import SqlCallStore
from voicebus_contracts import (
    CallAnsweredBy,
    Envelope,
    FinalTranscript,
    LatencyBreakdown,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
    envelope,
)
from voicebus_contracts.topics import CALLS, TOOLS, TRANSCRIPTS, Topic

Record = Callable[..., Awaitable[None]]
MakeCall = Callable[..., dict[str, Any]]
T0 = 1_750_000_000.0


def utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def progressed(node: str, *, at: float, **variables: str) -> tuple[Topic, Envelope[Any]]:
    """The workflow of call c1 at `node` at `at`, with every variable collected so far."""
    event = WorkflowProgressed(node=node, variables=variables)
    return TOOLS, envelope(event, call_id="c1", producer="agent").model_copy(
        update={"created_at": at}
    )


async def test_a_call_delivered_out_of_order_and_twice_is_recorded_once(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    events = a_call("c1", at=T0)
    order = (
        "playback",
        "chunk2",
        "returned",
        "progressed",
        "ended",
        "chunk0",
        "transcript",
        "called",
        "answered",
        "started",
        "chunk1",
    )
    scrambled = [events[name] for name in order]
    await record(*scrambled)
    await record(*scrambled)

    call = await store.call("c1")

    assert call is not None
    assert (call.status, call.transport, call.agent_id) == ("completed", "twilio", "support")
    assert call.direction == "inbound"
    assert (call.from_number, call.to_number) == ("+15550001", "+15550002")
    assert (call.started_at, call.ended_at, call.end_reason) == (
        utc(T0),
        utc(T0 + 10),
        "hangup",
    )
    assert call.answered_by == "human"
    assert (call.workflow_node, call.variables) == ("order_status", {"order_number": "A-1042"})
    user, agent = call.turns
    assert (user.role, user.turn_id, user.text) == ("user", "c1-t1", "Where is my order?")
    assert (user.ended_at, user.latency) == (utc(T0 + 2.0), None)
    assert (agent.role, agent.turn_id, agent.in_reply_to) == ("agent", "c1-t1:reply", "c1-t1")
    assert agent.text == "Let me check. It ships today."
    assert agent.started_at == utc(T0 + 3.4)
    assert agent.latency == LatencyBreakdown(
        endpoint_ms=500.0,
        stt_ms=300.0,
        first_text_ms=200.0,
        first_audio_ms=300.0,
        send_ms=100.0,
        voice_to_voice_ms=1400.0,
    )
    [tool_call] = call.tool_calls
    assert (tool_call.tool_call_id, tool_call.name, tool_call.arguments) == (
        "c1-tc1",
        "order_status",
        '{"order": "A-1042"}',
    )
    assert (tool_call.result, tool_call.failed, tool_call.duration_ms) == ("shipped", False, 40)
    assert (tool_call.called_at, tool_call.returned_at) == (utc(T0 + 2.95), utc(T0 + 2.99))
    assert [c.call_id for c in await store.calls(limit=10, offset=0)] == ["c1"]


async def test_a_reply_heard_before_its_call_started_makes_an_in_progress_call(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    events = a_call("c1", at=T0)
    await record(events["chunk1"])

    early = await store.call("c1")

    assert early is not None
    assert (early.status, early.agent_id, early.started_at) == ("in-progress", None, None)
    assert [(t.role, t.text, t.latency) for t in early.turns] == [
        ("agent", "It ships today.", None)
    ]

    await record(events["started"], events["chunk0"])
    later = await store.call("c1")

    assert later is not None
    assert (later.status, later.agent_id, later.started_at) == ("in-progress", "support", utc(T0))
    assert [t.text for t in later.turns] == ["Let me check. It ships today."]


async def test_a_reply_keeps_its_place_by_its_first_text_when_its_playback_comes_first(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    events = a_call("c1", at=T0)
    # The caller spoke again after the reply's first text but before its audio played.
    interruption = envelope(
        FinalTranscript(turn_id="c1-t2", text="Actually, never mind."), call_id="c1", producer="stt"
    ).model_copy(update={"created_at": T0 + 3.2})
    await record(events["playback"], events["transcript"], (TRANSCRIPTS, interruption))
    await record(events["chunk0"])

    call = await store.call("c1")

    assert call is not None
    assert [t.turn_id for t in call.turns] == ["c1-t1", "c1-t1:reply", "c1-t2"]


async def test_calls_are_listed_newest_first_a_page_at_a_time(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    for call_id, start in [("old", T0), ("newest", T0 + 120), ("middle", T0 + 60)]:
        await record(a_call(call_id, at=start)["started"])

    first_page = await store.calls(limit=2, offset=0)
    second_page = await store.calls(limit=2, offset=2)

    assert [c.call_id for c in first_page] == ["newest", "middle"]
    assert [c.call_id for c in second_page] == ["old"]
    assert all(c.status == "in-progress" and c.ended_at is None for c in first_page)


async def test_an_unknown_call_is_none(store: SqlCallStore) -> None:
    assert await store.call("never-seen") is None


async def test_the_latest_workflow_progress_is_kept_with_its_variables_whole(
    store: SqlCallStore, record: Record
) -> None:
    # The caller changed the date: the workflow asks for the time again, and forgot the old one.
    await record(
        progressed("ask_date", at=T0 + 1),
        progressed("confirm", at=T0 + 5, date="Monday", time="09:00"),
        progressed("ask_time", at=T0 + 9, date="Tuesday"),
    )

    call = await store.call("c1")

    assert call is not None
    assert (call.workflow_node, call.variables) == ("ask_time", {"date": "Tuesday"})


async def test_a_workflow_progress_delivered_again_after_a_later_one_changes_nothing(
    store: SqlCallStore, record: Record
) -> None:
    earlier = progressed("ask_time", at=T0 + 5, date="Monday")
    later = progressed("confirm", at=T0 + 9, date="Monday", time="09:00")
    await record(earlier, later, earlier, later, earlier)

    call = await store.call("c1")

    assert call is not None
    assert (call.workflow_node, call.variables) == ("confirm", {"date": "Monday", "time": "09:00"})


async def test_who_answered_and_the_workflow_heard_before_the_call_started_are_kept(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    events = a_call("c1", at=T0)
    await record(events["answered"], events["progressed"])

    early = await store.call("c1")

    assert early is not None
    assert (early.status, early.agent_id, early.answered_by) == ("in-progress", None, "human")
    assert early.workflow_node == "order_status"

    await record(events["started"], events["answered"])
    later = await store.call("c1")

    assert later is not None
    assert (later.agent_id, later.started_at, later.answered_by) == ("support", utc(T0), "human")
    assert (later.workflow_node, later.variables) == ("order_status", {"order_number": "A-1042"})


async def test_a_machine_that_answered_is_recorded(store: SqlCallStore, record: Record) -> None:
    machine = CallAnsweredBy(answered_by="machine_end_beep", detection_ms=4100)
    await record((CALLS, envelope(machine, call_id="c1", producer="gateway")))

    call = await store.call("c1")

    assert call is not None
    assert call.answered_by == "machine_end_beep"


async def test_a_call_without_detection_or_workflow_has_none(
    store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    await record(a_call("c1", at=T0)["started"])

    call = await store.call("c1")

    assert call is not None
    assert (call.answered_by, call.workflow_node, call.variables) == (None, None, {})


def tool(event: ToolCalled | ToolReturned, *, at: float) -> tuple[Topic, Envelope[Any]]:
    return TOOLS, envelope(event, call_id="c1", producer="agent").model_copy(
        update={"created_at": at}
    )


async def test_tool_calls_are_in_the_order_they_were_called_whatever_the_order_recorded(
    store: SqlCallStore, record: Record
) -> None:
    # The model called two tools at once, then a third; the second is still running.
    first = ToolCalled(tool_call_id="tc-b", name="weather", arguments="{}")
    second = ToolCalled(tool_call_id="tc-a", name="tides", arguments="{}")
    third = ToolCalled(tool_call_id="tc-c", name="book", arguments='{"boat": 2}')
    first_answered = ToolReturned(
        tool_call_id="tc-b", name="weather", result="sunny", failed=False, duration_ms=30
    )
    await record(
        tool(third, at=T0 + 5),
        tool(first_answered, at=T0 + 1.03),
        tool(second, at=T0 + 1.01),
        tool(first, at=T0 + 1),
    )

    call = await store.call("c1")

    assert call is not None
    assert [(t.tool_call_id, t.result) for t in call.tool_calls] == [
        ("tc-b", "sunny"),
        ("tc-a", None),
        ("tc-c", None),
    ]
