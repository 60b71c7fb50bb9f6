"""Fixtures: migrated analytics databases on SQLite and PostgreSQL, and the events of a call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voicebus_analytics.app import Service, create_service
from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.recorder import Recorder
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    Envelope,
    Event,
    FinalTranscript,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    StageStamps,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
    envelope,
)
from voicebus_contracts.topics import CALLS, PLAYBACK, REPLIES, TOOLS, TRANSCRIPTS, Topic
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine

Delivery = tuple[Topic, Envelope[Any]]
MakeCall = Callable[..., dict[str, Delivery]]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def database_url(empty_database_url: str) -> Iterator[str]:
    """A database migrated to the latest schema; taken back down to empty afterwards."""
    MIGRATIONS.upgrade(empty_database_url)
    yield empty_database_url
    MIGRATIONS.downgrade(empty_database_url)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlCallStore]:
    engine = create_engine(database_url)
    yield SqlCallStore(engine=engine)
    await engine.dispose()


@pytest.fixture
async def service(store: SqlCallStore) -> AsyncIterator[Service]:
    service = create_service(store, bus=BusSettings())
    yield service
    await service.follow_up.aclose()


@pytest.fixture
async def api(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The service's HTTP API (its lifespan, hence its consumers, not started)."""
    transport = httpx.ASGITransport(app=service.api)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client


Record = Callable[..., Awaitable[None]]


@pytest.fixture
def record(store: SqlCallStore) -> Record:
    """Hands deliveries to the recorder, as the app's handler does: `await record(*deliveries)`."""
    recorder = Recorder(store=store)

    async def deliver(*deliveries: Delivery) -> None:
        for _, env in deliveries:
            await recorder.record(env)

    return deliver


def _at(
    event: Event, *, call_id: str, producer: str, at: float, stamps: StageStamps | None = None
) -> Envelope[Any]:
    return envelope(event, call_id=call_id, producer=producer, stamps=stamps).model_copy(
        update={"created_at": at}
    )


def whole_call(call_id: str, *, at: float, agent_id: str = "support") -> dict[str, Delivery]:
    """The events of a call of `agent_id` started at `at`: a person answers, the caller asks,
    the agent's workflow takes the order number, the agent looks the order up (a tool) and
    answers in 3 chunks.

    Stamps put 500 ms of endpointing, 300 ms of STT, 200 ms to the first reply text, 300 ms to
    the first audio and 100 ms to send it: 1400 ms voice to voice.
    """
    heard = StageStamps(speech_ended=at + 2.0, turn_ended=at + 2.5, transcribed=at + 2.8)
    replied = heard.stamp(reply_first_text=at + 3.0)
    played = replied.stamp(tts_first_audio=at + 3.3, playback_started=at + 3.4)
    reply = f"{call_id}-t1:reply"

    def chunk(seq: int, text: str) -> Delivery:
        event = ReplyTextChunk(
            reply_id=reply, in_reply_to=f"{call_id}-t1", seq=seq, text=text, last=seq == 2
        )
        return REPLIES, _at(
            event, call_id=call_id, producer="agent", at=at + 3.0 + seq / 10, stamps=replied
        )

    started = CallStarted(
        transport="twilio",
        agent_id=agent_id,
        gateway_id="gw-1",
        audio_in=TELEPHONE,
        audio_out=SPEECH_16K,
        from_number="+15550001",
        to_number="+15550002",
    )
    transcript = FinalTranscript(turn_id=f"{call_id}-t1", text="Where is my order?")
    answered = CallAnsweredBy(answered_by="human", detection_ms=1200)
    progressed = WorkflowProgressed(
        node="order_status", previous_node="greeting", variables={"order_number": "A-1042"}
    )
    tool_call = f"{call_id}-tc1"
    called = ToolCalled(
        tool_call_id=tool_call, name="order_status", arguments='{"order": "A-1042"}'
    )
    returned = ToolReturned(
        tool_call_id=tool_call, name="order_status", result="shipped", failed=False, duration_ms=40
    )
    return {
        "started": (CALLS, _at(started, call_id=call_id, producer="gateway", at=at)),
        "answered": (CALLS, _at(answered, call_id=call_id, producer="gateway", at=at + 1.2)),
        "transcript": (
            TRANSCRIPTS,
            _at(transcript, call_id=call_id, producer="stt", at=at + 2.8, stamps=heard),
        ),
        "progressed": (
            TOOLS,
            _at(progressed, call_id=call_id, producer="agent", at=at + 2.9, stamps=heard),
        ),
        "called": (TOOLS, _at(called, call_id=call_id, producer="agent", at=at + 2.95)),
        "returned": (TOOLS, _at(returned, call_id=call_id, producer="agent", at=at + 2.99)),
        "chunk0": chunk(0, "Let me check."),
        "chunk1": chunk(1, "It ships today."),
        "chunk2": chunk(2, ""),
        "playback": (
            PLAYBACK,
            _at(
                ReplyPlaybackStarted(reply_id=reply),
                call_id=call_id,
                producer="gateway",
                at=at + 3.4,
                stamps=played,
            ),
        ),
        "ended": (
            CALLS,
            _at(CallEnded(reason="hangup"), call_id=call_id, producer="gateway", at=at + 10),
        ),
    }


@pytest.fixture
def a_call() -> MakeCall:
    """Builds the events of a whole call: `a_call(call_id, at=epoch_seconds[, agent_id=...])`."""
    return whole_call
