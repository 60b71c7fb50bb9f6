"""The questions the API answers about calls: which calls match filters and a text search, the
waterfall and interruptions of one call, the summary of many and their CSV export, on SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.types import Message

from voicebus_analytics import app, sql_store
from voicebus_analytics.app import Service
from voicebus_analytics.latency import waterfall
from voicebus_analytics.ports import CallFilter
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallEnded,
    CallStarted,
    Direction,
    Envelope,
    Event,
    FinalTranscript,
    LatencyBreakdown,
    ReplyCancelled,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    StageStamps,
    ToolCalled,
    ToolReturned,
    Transport,
    envelope,
)
from voicebus_contracts.topics import CALLS, PLAYBACK, REPLIES, TOOLS, TRANSCRIPTS, Topic

Delivery = tuple[Topic, Envelope[Any]]
Record = Callable[..., Awaitable[None]]
T0 = 1_750_000_000.0
"""2025-06-15T15:06:40Z"""
DAY = 86_400.0


def utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass(frozen=True)
class Exchange:
    """The caller says something and the agent replies, its stages taking `stages_ms`
    (endpoint, stt, first text, first audio, send), after calling `tools`; the caller may cut
    the reply off."""

    said: str
    replied: str = "Sure."
    stages_ms: tuple[float, float, float, float, float] = (500.0, 300.0, 200.0, 300.0, 100.0)
    cut_off: bool = False
    tools: tuple[str, ...] = ()


def conversation(
    call_id: str,
    *,
    at: float,
    agent_id: str = "support",
    transport: Transport = "twilio",
    direction: Direction = "inbound",
    exchanges: Sequence[Exchange] = (),
    ended: tuple[float, str] | None = None,
) -> list[Delivery]:
    """The events of a call started at `at`: the caller's speech in exchange k ends 10 (k + 1)
    seconds in; a reply cut off is cancelled half a second into its playback; with `ended`
    (seconds after the start, reason) the call ends."""

    def sent(
        topic: Topic, event: Event, when: float, stamps: StageStamps | None = None
    ) -> Delivery:
        env = envelope(event, call_id=call_id, producer="test", stamps=stamps)
        return topic, env.model_copy(update={"created_at": when})

    started = CallStarted(
        transport=transport,
        agent_id=agent_id,
        gateway_id="gw-1",
        audio_in=TELEPHONE,
        audio_out=SPEECH_16K,
        from_number="+15550001",
        to_number="+15550002",
        direction=direction,
    )
    deliveries = [sent(CALLS, started, at)]
    for k, exchange in enumerate(exchanges):
        turn_id, reply_id = f"{call_id}-t{k}", f"{call_id}-t{k}:reply"
        spoke = at + 10.0 * (k + 1)
        speech_ended, turn_ended, transcribed, first_text, first_audio, playback = (
            spoke + ms / 1000 for ms in itertools.accumulate(exchange.stages_ms, initial=0.0)
        )
        heard = StageStamps(
            speech_ended=speech_ended, turn_ended=turn_ended, transcribed=transcribed
        )
        replied = heard.stamp(reply_first_text=first_text)
        played = replied.stamp(tts_first_audio=first_audio, playback_started=playback)
        chunk = ReplyTextChunk(
            reply_id=reply_id, in_reply_to=turn_id, seq=0, text=exchange.replied, last=True
        )
        deliveries += [
            sent(
                TRANSCRIPTS,
                FinalTranscript(turn_id=turn_id, text=exchange.said),
                transcribed,
                heard,
            ),
            sent(REPLIES, chunk, first_text, replied),
            sent(PLAYBACK, ReplyPlaybackStarted(reply_id=reply_id), playback, played),
        ]
        for n, name in enumerate(exchange.tools):
            tool_call = f"{turn_id}:tool{n}"
            deliveries += [
                sent(TOOLS, ToolCalled(tool_call_id=tool_call, name=name, arguments="{}"), spoke),
                sent(
                    TOOLS,
                    ToolReturned(
                        tool_call_id=tool_call, name=name, result="ok", failed=False, duration_ms=5
                    ),
                    spoke,
                ),
            ]
        if exchange.cut_off:
            cancelled = ReplyCancelled(reply_id=reply_id, heard_text=exchange.replied[:2])
            deliveries.append(sent(REPLIES, cancelled, playback + 0.5))
    if ended is not None:
        after, reason = ended
        deliveries.append(sent(CALLS, CallEnded(reason=reason), at + after))
    return deliveries


async def record_calls(record: Record, *calls: list[Delivery]) -> None:
    for deliveries in calls:
        await record(*deliveries)


# --- Filters and text search -------------------------------------------------------------------

MANY_CALLS = (
    conversation(
        "order",
        at=T0,
        exchanges=[Exchange("Where is my ORDER?", "It ships today.")],
        ended=(60, "hangup"),
    ),
    conversation(
        "refund",
        at=T0 + 60,
        agent_id="sales",
        transport="web",
        exchanges=[Exchange("Un remboursement pour l'ÉTÉ, 100% sûr.", "D'accord.")],
    ),
    conversation("silent", at=T0 + 120, transport="web", ended=(5, "hangup")),
    conversation(
        "later",
        at=T0 + DAY,
        agent_id="sales",
        direction="outbound",
        exchanges=[Exchange("It costs 1000 dollars.", "Order noted.")],
        ended=(30, "hangup"),
    ),
)
"""Newest first: later, silent, refund, order."""


@pytest.mark.parametrize(
    ("matching", "expected"),
    [
        (CallFilter(), ["later", "silent", "refund", "order"]),
        (CallFilter(agent_id="support"), ["silent", "order"]),
        (CallFilter(agent_id="nobody"), []),
        (CallFilter(status="in-progress"), ["refund"]),
        (CallFilter(status="completed"), ["later", "silent", "order"]),
        (CallFilter(transport="web"), ["silent", "refund"]),
        (CallFilter(direction="outbound"), ["later"]),
        (CallFilter(direction="inbound"), ["silent", "refund", "order"]),
        (CallFilter(started_after=utc(T0 + 60)), ["later", "silent", "refund"]),
        (CallFilter(started_before=utc(T0 + 60)), ["order"]),
        (
            CallFilter(started_after=utc(T0 + 60), started_before=utc(T0 + DAY)),
            ["silent", "refund"],
        ),
        (CallFilter(agent_id="sales", transport="twilio"), ["later"]),
    ],
    ids=repr,
)
async def test_calls_are_filtered_by_agent_status_transport_direction_and_start(
    store: SqlCallStore, record: Record, matching: CallFilter, expected: list[str]
) -> None:
    await record_calls(record, *MANY_CALLS)

    calls = await store.calls(matching, limit=10, offset=0)

    assert [call.call_id for call in calls] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order", ["later", "order"]),  # the agent's "Order noted.", the caller's "ORDER"
        ("l'été", ["refund"]),  # letter case beyond ASCII
        ("100%", ["refund"]),  # % is no wildcard: "1000" does not match
        ("1_00", []),  # nor is _
        ("nobody said this", []),
    ],
)
async def test_the_text_search_finds_what_either_side_said_in_any_letter_case(
    store: SqlCallStore, record: Record, text: str, expected: list[str]
) -> None:
    await record_calls(record, *MANY_CALLS)

    calls = await store.calls(CallFilter(text=text), limit=10, offset=0)

    assert [call.call_id for call in calls] == expected


async def test_filtered_calls_come_a_page_at_a_time(store: SqlCallStore, record: Record) -> None:
    await record_calls(record, *MANY_CALLS)
    sales = CallFilter(agent_id="sales")

    first = await store.calls(sales, limit=1, offset=0)
    second = await store.calls(sales, limit=1, offset=1)

    assert [[c.call_id for c in page] for page in (first, second)] == [["later"], ["refund"]]


async def test_the_list_takes_its_filters_from_the_query(
    api: httpx.AsyncClient, record: Record
) -> None:
    await record_calls(record, *MANY_CALLS)

    by_agent_and_time = await api.get(
        "/api/calls",
        params={
            "agent_id": "sales",
            "started_after": "2025-06-15T17:07:40+02:00",  # T0 + 60 s
            "started_before": "2025-06-16T00:00:00Z",
        },
    )
    searched = await api.get("/api/calls", params={"q": "L'ÉTÉ", "status": "in-progress"})
    naive = await api.get("/api/calls", params={"started_before": "2025-06-15T15:07:40"})
    placed = await api.get("/api/calls", params={"direction": "outbound"})

    assert [c["call_id"] for c in by_agent_and_time.json()] == ["refund"]
    assert [c["call_id"] for c in searched.json()] == ["refund"]
    assert [(c["call_id"], c["direction"]) for c in placed.json()] == [("later", "outbound")]
    assert [c["call_id"] for c in naive.json()] == ["order"]  # an instant without offset is UTC


@pytest.mark.parametrize("path", ["/api/calls", "/api/calls.csv", "/api/analytics/summary"])
@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"status": "ringing"}, "status"),
        ({"transport": "fax"}, "transport"),
        ({"direction": "sideways"}, "direction"),
        ({"agent_id": ""}, "agent_id"),
        ({"started_after": "yesterday"}, "started_after"),
        ({"started_before": "2025-06-15T25:00:00Z"}, "started_before"),
        ({"q": ""}, "q"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(
    api: httpx.AsyncClient, path: str, params: dict[str, str], refused: str
) -> None:
    response = await api.get(path, params=params)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", refused]
    assert error["msg"]


@pytest.mark.parametrize("path", ["/api/calls", "/api/calls.csv", "/api/analytics/summary"])
async def test_a_time_range_that_ends_before_it_starts_is_refused(
    api: httpx.AsyncClient, path: str
) -> None:
    response = await api.get(
        path,
        params={"started_after": "2025-06-16T00:00:00Z", "started_before": "2025-06-15T00:00:00Z"},
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "started_before"]
    assert error["msg"] == "started_before must be later than started_after"


# --- One call: waterfall and interruptions -----------------------------------------------------


async def test_a_reply_the_caller_cut_off_is_marked_with_when_it_was_cancelled(
    store: SqlCallStore, record: Record
) -> None:
    events = conversation(
        "c1", at=T0, exchanges=[Exchange("Hello?"), Exchange("My order.", "Let me", cut_off=True)]
    )
    await record(*reversed(events))
    await record(*events)

    call = await store.call("c1")

    assert call is not None
    assert [(t.role, t.interrupted) for t in call.turns] == [
        ("user", False),
        ("agent", False),
        ("user", False),
        ("agent", True),
    ]
    cut_off = call.turns[3]
    assert (cut_off.text, cut_off.in_reply_to) == ("Let me", "c1-t1")
    assert cut_off.ended_at == utc(T0 + 20 + 1.4 + 0.5)
    assert call.turns[1].ended_at is None
    assert call.interruptions == 1


async def test_each_agent_turn_has_its_stages_on_a_waterfall(
    store: SqlCallStore, record: Record
) -> None:
    await record(
        *conversation(
            "c1", at=T0, exchanges=[Exchange("Hi", stages_ms=(620.5, 180, 410, 95.5, 20))]
        )
    )

    call = await store.call("c1")

    assert call is not None
    user, agent = call.turns
    assert user.waterfall is None
    assert agent.waterfall is not None
    assert [(s.stage, s.by, s.start_ms, s.duration_ms) for s in agent.waterfall] == [
        ("endpoint", "media", 0.0, 620.5),
        ("stt", "stt", 620.5, 180.0),
        ("first_text", "agent", 800.5, 410.0),
        ("first_audio", "tts", 1210.5, 95.5),
        ("send", "gateway", 1306.0, 20.0),
    ]
    assert agent.latency is not None
    assert agent.latency.voice_to_voice_ms == 1326.0


def test_a_waterfall_without_caller_speech_starts_at_its_first_stamped_stage() -> None:
    greeting = LatencyBreakdown(
        endpoint_ms=None,
        stt_ms=None,
        first_text_ms=None,
        first_audio_ms=250.0,
        send_ms=40.5,
        voice_to_voice_ms=None,
    )

    assert [(s.stage, s.start_ms, s.duration_ms) for s in waterfall(greeting)] == [
        ("endpoint", None, None),
        ("stt", None, None),
        ("first_text", None, None),
        ("first_audio", 0.0, 250.0),
        ("send", 250.0, 40.5),
    ]


def test_after_a_stage_not_stamped_the_later_stages_have_no_start() -> None:
    gap = LatencyBreakdown(
        endpoint_ms=500.0,
        stt_ms=None,
        first_text_ms=None,
        first_audio_ms=300.0,
        send_ms=100.0,
        voice_to_voice_ms=1400.0,
    )

    assert [(s.stage, s.start_ms, s.duration_ms) for s in waterfall(gap)] == [
        ("endpoint", 0.0, 500.0),
        ("stt", None, None),
        ("first_text", None, None),
        ("first_audio", None, 300.0),
        ("send", None, 100.0),
    ]


# --- Summary and export ------------------------------------------------------------------------

BYE = 'caller said "bye", then hung up'
KNOWN_CALLS = (
    conversation(
        "a",
        at=T0,
        exchanges=[
            Exchange(
                "Where is my order?",
                stages_ms=(400, 200, 300, 200, 100),
                tools=("order_status", "shipping_eta"),
            ),
            Exchange("No, the other one.", stages_ms=(600, 300, 500, 300, 100), cut_off=True),
        ],
        ended=(60, "hangup"),
    ),
    conversation(
        "b",
        at=T0 + 3600,
        exchanges=[Exchange("Can I pay later?", stages_ms=(500, 250, 400, 250, 100))],
        ended=(120, BYE),
    ),
    conversation(
        "c",
        at=T0 + DAY,
        exchanges=[
            Exchange("A person, please.", stages_ms=(700, 350, 600, 350, 100), cut_off=True)
        ],
        ended=(30, "transferred"),
    ),
    conversation(
        "d",
        at=T0 + DAY + 60,
        transport="web",
        exchanges=[Exchange("Hello?", stages_ms=(300, 150, 200, 150, 100))],
    ),
    conversation(
        "e",
        at=T0 + 120,
        agent_id="sales",
        exchanges=[Exchange("Prices?", stages_ms=(1000, 1000, 1000, 1000, 1000))],
        ended=(10, "hangup"),
    ),
)
"""Newest first: d, c, b, e, a. Agent support's calls a to d: 5 agent turns, 2 cut off,
voice to voice 1200 and 1800 (a), 1500 (b), 2100 (c), 900 (d)."""


async def test_the_summary_of_known_calls(api: httpx.AsyncClient, record: Record) -> None:
    await record_calls(record, *KNOWN_CALLS)

    response = await api.get("/api/analytics/summary", params={"agent_id": "support"})

    assert response.status_code == 200
    assert response.json() == {
        "calls": 4,
        "capped": False,
        "calls_per_day": [{"day": "2025-06-15", "calls": 2}, {"day": "2025-06-16", "calls": 2}],
        "duration": {"calls": 3, "mean_s": 70.0, "median_s": 60.0},
        "latency": {
            "endpoint": {"turns": 5, "p50_ms": 500.0, "p95_ms": 680.0},
            "stt": {"turns": 5, "p50_ms": 250.0, "p95_ms": 340.0},
            "first_text": {"turns": 5, "p50_ms": 400.0, "p95_ms": 580.0},
            "first_audio": {"turns": 5, "p50_ms": 250.0, "p95_ms": 340.0},
            "send": {"turns": 5, "p50_ms": 100.0, "p95_ms": 100.0},
            "voice_to_voice": {"turns": 5, "p50_ms": 1500.0, "p95_ms": 2040.0},
        },
        "agent_turns": 5,
        "interruptions": 2,
        "interruption_rate": 0.4,
        "statuses": {"completed": 3, "in-progress": 1},
        "end_reasons": {BYE: 1, "hangup": 1, "transferred": 1},
    }


async def test_the_summary_follows_the_filters(store: SqlCallStore, record: Record) -> None:
    await record_calls(record, *KNOWN_CALLS)

    second_day = await store.summary(CallFilter(started_after=utc(T0 + DAY)))

    assert (second_day.calls, second_day.agent_turns, second_day.interruptions) == (2, 2, 1)
    assert [(d.day.isoformat(), d.calls) for d in second_day.calls_per_day] == [("2025-06-16", 2)]
    assert second_day.statuses == {"completed": 1, "in-progress": 1}
    assert second_day.end_reasons == {"transferred": 1}
    assert second_day.latency["voice_to_voice"].p50_ms == 1500.0  # 900 and 2100


async def test_the_summary_of_no_calls_has_no_figures(store: SqlCallStore) -> None:
    summary = await store.summary(CallFilter(agent_id="nobody"))

    assert (summary.calls, summary.capped, summary.calls_per_day) == (0, False, [])
    assert (summary.duration.calls, summary.duration.mean_s, summary.duration.median_s) == (
        0,
        None,
        None,
    )
    assert {m: (p.turns, p.p50_ms, p.p95_ms) for m, p in summary.latency.items()} == {
        m: (0, None, None)
        for m in ("endpoint", "stt", "first_text", "first_audio", "send", "voice_to_voice")
    }
    assert (summary.agent_turns, summary.interruptions, summary.interruption_rate) == (0, 0, None)
    assert (summary.statuses, summary.end_reasons) == ({}, {})


async def test_a_summary_of_too_many_calls_covers_the_newest(
    store: SqlCallStore, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    await record_calls(record, *KNOWN_CALLS)
    monkeypatch.setattr(sql_store, "MAX_SUMMARIZED_CALLS", 2)

    summary = await store.summary()

    assert (summary.calls, summary.capped) == (2, True)
    assert [(d.day.isoformat(), d.calls) for d in summary.calls_per_day] == [("2025-06-16", 2)]
    assert summary.agent_turns == 2  # d's and c's


def parsed(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


async def test_the_csv_export_parses_back_to_the_calls(
    api: httpx.AsyncClient, record: Record
) -> None:
    await record_calls(record, *KNOWN_CALLS)

    response = await api.get("/api/calls.csv", params={"agent_id": "support"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="calls.csv"'
    common = {
        "agent_id": "support",
        "direction": "inbound",
        "from_number": "+15550001",
        "to_number": "+15550002",
        "answered_by": "",
    }
    assert parsed(response.text) == [
        {
            "call_id": "d",
            "status": "in-progress",
            **common,
            "transport": "web",
            "started_at": "2025-06-16T15:07:40Z",
            "ended_at": "",
            "end_reason": "",
            "duration_s": "",
            "turns": "2",
            "tool_calls": "0",
            "interruptions": "0",
            "median_voice_to_voice_ms": "900.0",
        },
        {
            "call_id": "c",
            "status": "completed",
            **common,
            "transport": "twilio",
            "started_at": "2025-06-16T15:06:40Z",
            "ended_at": "2025-06-16T15:07:10Z",
            "end_reason": "transferred",
            "duration_s": "30.0",
            "turns": "2",
            "tool_calls": "0",
            "interruptions": "1",
            "median_voice_to_voice_ms": "2100.0",
        },
        {
            "call_id": "b",
            "status": "completed",
            **common,
            "transport": "twilio",
            "started_at": "2025-06-15T16:06:40Z",
            "ended_at": "2025-06-15T16:08:40Z",
            "end_reason": BYE,
            "duration_s": "120.0",
            "turns": "2",
            "tool_calls": "0",
            "interruptions": "0",
            "median_voice_to_voice_ms": "1500.0",
        },
        {
            "call_id": "a",
            "status": "completed",
            **common,
            "transport": "twilio",
            "started_at": "2025-06-15T15:06:40Z",
            "ended_at": "2025-06-15T15:07:40Z",
            "end_reason": "hangup",
            "duration_s": "60.0",
            "turns": "4",
            "tool_calls": "2",
            "interruptions": "1",
            "median_voice_to_voice_ms": "1500.0",
        },
    ]


async def test_the_csv_export_follows_the_filters(api: httpx.AsyncClient, record: Record) -> None:
    await record_calls(record, *KNOWN_CALLS)

    searched = await api.get("/api/calls.csv", params={"q": "PAY LATER"})
    nothing = await api.get("/api/calls.csv", params={"agent_id": "nobody"})

    assert [row["call_id"] for row in parsed(searched.text)] == ["b"]
    assert nothing.text.splitlines() == [
        "call_id,status,agent_id,transport,direction,from_number,to_number,started_at,ended_at,"
        "end_reason,answered_by,duration_s,turns,tool_calls,interruptions,"
        "median_voice_to_voice_ms"
    ]


async def sent_body_parts(service: Service, path: str) -> list[bytes]:
    """The parts of the body the API sends for a GET of `path`, as a server would receive them
    (httpx's ASGI transport joins them)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"analytics")],
        "server": ("analytics", 80),
        "client": ("127.0.0.1", 50000),
    }
    parts: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            parts.append(message["body"])

    await service.api(scope, receive, send)
    return parts


async def test_an_export_is_read_and_sent_a_part_at_a_time(
    service: Service, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [conversation(f"call-{n:02}", at=T0 + n, exchanges=[Exchange("Hi")]) for n in range(30)]
    await record_calls(record, *calls)
    # Batches of 5 rows split calls (of 2 turns, hence 2 rows each) between batches.
    monkeypatch.setattr(sql_store, "BATCH", 5)
    monkeypatch.setattr(app, "CSV_CHUNK_CHARS", 500)

    parts = await sent_body_parts(service, "/api/calls.csv")

    rows = parsed(b"".join(parts).decode())
    assert [row["call_id"] for row in rows] == [f"call-{n:02}" for n in reversed(range(30))]
    assert {row["turns"] for row in rows} == {"2"}
    assert len(parts) > 1
