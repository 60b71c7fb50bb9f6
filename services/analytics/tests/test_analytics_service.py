"""The service as the bus and the gateway see it: events in through Kafka, calls out over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from voicebus_analytics.app import Service, create_service
from voicebus_analytics.ports import CallStore
from voicebus_analytics.records import CallerTurn
from voicebus_contracts import Envelope, FinalTranscript, ToolCalled, ToolReturned, envelope
from voicebus_contracts.topics import DEAD_LETTERS, TOOLS, TRANSCRIPTS
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings

MakeCall = Callable[..., dict[str, Any]]
T0 = 1_750_000_000.0


@pytest.fixture
async def bus(service: Service) -> AsyncIterator[KafkaBroker]:
    async with TestKafkaBroker(service.broker) as broker:
        yield broker


async def test_a_whole_call_delivered_twice_is_served_once(
    service: Service, bus: KafkaBroker, api: httpx.AsyncClient, a_call: MakeCall
) -> None:
    events = a_call("call-1", at=T0)
    order = (
        "started",
        "answered",
        "transcript",
        "progressed",
        "returned",
        "called",
        "chunk2",
        "chunk0",
        "chunk1",
        "playback",
        "ended",
    )
    for name in order:
        topic, env = events[name]
        await publish(bus, topic, env)
        await publish(bus, topic, env)
    await service.follow_up.drain()

    response = await api.get("/api/calls/call-1")

    assert response.status_code == 200
    assert response.json() == {
        "call_id": "call-1",
        "status": "completed",
        "agent_id": "support",
        "transport": "twilio",
        "direction": "inbound",
        "from_number": "+15550001",
        "to_number": "+15550002",
        "started_at": "2025-06-15T15:06:40Z",
        "ended_at": "2025-06-15T15:06:50Z",
        "end_reason": "hangup",
        "answered_by": "human",
        "workflow_node": "order_status",
        "variables": {"order_number": "A-1042"},
        "turns": [
            {
                "role": "user",
                "turn_id": "call-1-t1",
                "text": "Where is my order?",
                "started_at": None,
                "ended_at": "2025-06-15T15:06:42Z",
                "in_reply_to": None,
                "latency": None,
                "waterfall": None,
                "interrupted": False,
            },
            {
                "role": "agent",
                "turn_id": "call-1-t1:reply",
                "text": "Let me check. It ships today.",
                "started_at": "2025-06-15T15:06:43.400000Z",
                "ended_at": None,
                "in_reply_to": "call-1-t1",
                "latency": {
                    "endpoint_ms": 500.0,
                    "stt_ms": 300.0,
                    "first_text_ms": 200.0,
                    "first_audio_ms": 300.0,
                    "send_ms": 100.0,
                    "voice_to_voice_ms": 1400.0,
                },
                "waterfall": [
                    {"stage": "endpoint", "by": "media", "start_ms": 0.0, "duration_ms": 500.0},
                    {"stage": "stt", "by": "stt", "start_ms": 500.0, "duration_ms": 300.0},
                    {"stage": "first_text", "by": "agent", "start_ms": 800.0, "duration_ms": 200.0},
                    {"stage": "first_audio", "by": "tts", "start_ms": 1000.0, "duration_ms": 300.0},
                    {"stage": "send", "by": "gateway", "start_ms": 1300.0, "duration_ms": 100.0},
                ],
                "interrupted": False,
            },
        ],
        "tool_calls": [
            {
                "tool_call_id": "call-1-tc1",
                "name": "order_status",
                "arguments": '{"order": "A-1042"}',
                "called_at": "2025-06-15T15:06:42.950000Z",
                "result": "shipped",
                "failed": False,
                "duration_ms": 40,
                "returned_at": "2025-06-15T15:06:42.990000Z",
            }
        ],
        "interruptions": 0,
        "summary": "Caller: Where is my order?\nAgent: Let me check. It ships today.",
        "extraction": None,
        "succeeded": None,
        "success_reason": None,
    }


async def test_calls_are_listed_newest_first(
    bus: KafkaBroker, api: httpx.AsyncClient, a_call: MakeCall
) -> None:
    for call_id, start in [("first", T0), ("third", T0 + 120), ("second", T0 + 60)]:
        topic, env = a_call(call_id, at=start)["started"]
        await publish(bus, topic, env)

    everything = await api.get("/api/calls")
    page = await api.get("/api/calls", params={"limit": 1, "offset": 1})

    assert [c["call_id"] for c in everything.json()] == ["third", "second", "first"]
    assert everything.json()[0]["status"] == "in-progress"
    assert "turns" not in everything.json()[0]
    assert [c["call_id"] for c in page.json()] == ["second"]


async def test_an_oversized_page_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/calls", params={"limit": 10_000})

    assert response.status_code == 422


async def test_an_unknown_call_is_a_404_with_a_reason(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/calls/nobody")

    assert response.status_code == 404
    assert response.json() == {"detail": "no call 'nobody' was recorded"}


async def test_a_malformed_message_is_put_aside_and_the_next_one_recorded(
    bus: KafkaBroker, api: httpx.AsyncClient, a_call: MakeCall
) -> None:
    # The broker buries it with the dead letters (voicebus_runtime.deadletters) and moves on.
    await bus.publish(b'{"call_id": "call-1", "event": {}}', "voicebus.calls", key=b"call-1")
    topic, env = a_call("call-1", at=T0)["started"]
    await publish(bus, topic, env)

    assert (await api.get("/api/calls/call-1")).json()["status"] == "in-progress"


async def test_a_tool_call_is_on_record_from_its_answer_until_its_call_arrives(
    bus: KafkaBroker, api: httpx.AsyncClient
) -> None:
    def tool_event(event: ToolCalled | ToolReturned, at: float) -> Envelope[Any]:
        return envelope(event, call_id="call-1", producer="agent").model_copy(
            update={"created_at": at}
        )

    called = tool_event(
        ToolCalled(tool_call_id="tc-1", name="book", arguments='{"day": "Monday"}'), T0
    )
    returned = tool_event(
        ToolReturned(
            tool_call_id="tc-1", name="book", result="no boat free", failed=True, duration_ms=900
        ),
        T0 + 0.9,
    )
    await publish(bus, TOOLS, returned)

    [answered] = (await api.get("/api/calls/call-1")).json()["tool_calls"]
    assert (answered["arguments"], answered["called_at"]) == (None, None)
    assert (answered["result"], answered["failed"], answered["duration_ms"]) == (
        "no boat free",
        True,
        900,
    )

    await publish(bus, TOOLS, called)
    await publish(bus, TOOLS, returned)
    [whole] = (await api.get("/api/calls/call-1")).json()["tool_calls"]

    assert whole == {
        "tool_call_id": "tc-1",
        "name": "book",
        "arguments": '{"day": "Monday"}',
        "called_at": "2025-06-15T15:06:40Z",
        "result": "no boat free",
        "failed": True,
        "duration_ms": 900,
        "returned_at": "2025-06-15T15:06:40.900000Z",
    }


class RefusingStore:
    """A store that refuses a caller's turn (a constraint the event breaks, say)."""

    async def record_caller_turn(self, turn: CallerTurn) -> None:
        raise ValueError(f"turn {turn.turn_id} breaks a constraint")


async def test_an_event_that_cannot_be_recorded_goes_to_the_dead_letters(
    a_call: MakeCall,
) -> None:
    service = create_service(cast(CallStore, RefusingStore()), bus=BusSettings())
    buried: list[tuple[bytes, dict[str, str]]] = []

    @service.broker.subscriber(DEAD_LETTERS.name)
    async def keep(message: KafkaMessage) -> None:
        buried.append((message.body, dict(message.headers)))

    topic, env = a_call("call-1", at=T0)["transcript"]
    async with TestKafkaBroker(service.broker) as bus:
        await publish(bus, topic, env)

    [(body, headers)] = buried
    assert Envelope[FinalTranscript].model_validate_json(body) == env
    assert headers["voicebus-dead-topic"] == TRANSCRIPTS.name
    assert headers["voicebus-dead-error"] == "ValueError: turn call-1-t1 breaks a constraint"


async def test_each_recorded_turn_counts_in_the_latency_histograms_of_metrics(
    bus: KafkaBroker, api: httpx.AsyncClient, a_call: MakeCall
) -> None:
    def voice_to_voice_turns(exposition: str) -> float:
        line = 'voicebus_turn_latency_seconds_count{stage="voice_to_voice"}'
        counts = [row for row in exposition.splitlines() if row.startswith(line)]
        return float(counts[0].split()[-1]) if counts else 0.0

    before = voice_to_voice_turns((await api.get("/metrics")).text)
    for name in ("started", "transcript", "playback", "ended"):
        topic, env = a_call("call-metrics", at=T0)[name]
        await publish(bus, topic, env)

    metrics = await api.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert voice_to_voice_turns(metrics.text) == before + 1
