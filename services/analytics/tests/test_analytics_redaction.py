"""VOICEBUS_REDACT_PII in analytics: what was said in a call (transcripts, replies, tool calls,
its end reason) and its post-call summary are on record, exported and judged only redacted,
through the service's consumers on SQLite and PostgreSQL, with a local OpenAI-compatible model."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from voicebus_analytics.app import Service, create_service
from voicebus_analytics.model_judge import ModelJudge
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_contracts import (
    CallEnded,
    FinalTranscript,
    ReplyTextChunk,
    ToolCalled,
    ToolReturned,
    WorkflowProgressed,
)
from voicebus_contracts.agents import LanguageModel
from voicebus_devstack.fake_openai import FakeOpenAI
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings

MakeCall = Callable[..., dict[str, Any]]
T0 = 1_750_000_000.0
EMAIL, CARD, PHONE = "jane.doe@example.com", "4111 1111 1111 1111", "(415) 555-0134"
SAID = f"I'm {EMAIL}, my card is {CARD} and my number {PHONE}"
REDACTED = "I'm [email], my card is [card] and my number [phone]"


@dataclass
class Redacting:
    bus: KafkaBroker
    api: httpx.AsyncClient
    service: Service
    model: FakeOpenAI


@pytest.fixture
async def redacting(store: SqlCallStore) -> AsyncIterator[Redacting]:
    """The service with VOICEBUS_REDACT_PII and a model of its own to judge its calls."""
    async with FakeOpenAI() as fake:
        judge = ModelJudge(service_base_url=fake.base_url, service_api_key=fake.api_key)
        service = create_service(
            store,
            bus=BusSettings(redact_pii=True),
            judge=judge,
            service_model=LanguageModel(model="analytics-1", base_url=fake.base_url),
        )
        transport = httpx.ASGITransport(app=service.api)
        async with (
            TestKafkaBroker(service.broker) as bus,
            httpx.AsyncClient(transport=transport, base_url="http://analytics") as api,
        ):
            yield Redacting(bus, api, service, fake)
            await service.follow_up.aclose()
        await judge.aclose()


def personal_call(a_call: MakeCall) -> dict[str, Any]:
    """A whole call in which the caller gives their email, card and phone number, the agent
    repeats them, a tool is called with them and answers with them, the agent hangs up saying
    why, and the workflow collects the email."""
    events = a_call("call-1", at=T0)

    def saying(name: str, event: Any) -> None:
        topic, env = events[name]
        events[name] = (topic, env.model_copy(update={"event": event}))

    saying("transcript", FinalTranscript(turn_id="call-1-t1", text=SAID))
    saying(
        "chunk0",
        ReplyTextChunk(
            reply_id="call-1-t1:reply", in_reply_to="call-1-t1", seq=0, text=SAID, last=False
        ),
    )
    arguments = json.dumps({"email": EMAIL, "phone": PHONE})
    saying("called", ToolCalled(tool_call_id="call-1-tc1", name="crm", arguments=arguments))
    saying(
        "returned",
        ToolReturned(
            tool_call_id="call-1-tc1", name="crm", result=SAID, failed=False, duration_ms=40
        ),
    )
    saying("ended", CallEnded(reason=f"the caller gave {SAID}"))
    saying("progressed", WorkflowProgressed(node="done", variables={"email": EMAIL}))
    return events


async def test_what_was_said_is_recorded_exported_and_judged_redacted(
    redacting: Redacting, a_call: MakeCall
) -> None:
    redacting.model.answer(json.dumps({"summary": f"Jane ({EMAIL}) asked about her order."}))

    for topic, env in personal_call(a_call).values():
        await publish(redacting.bus, topic, env)
    await redacting.service.follow_up.drain()

    call = (await redacting.api.get("/api/calls/call-1")).json()
    assert [turn["text"] for turn in call["turns"]] == [REDACTED, f"{REDACTED} It ships today."]
    [tool] = call["tool_calls"]
    assert json.loads(tool["arguments"]) == {"email": "[email]", "phone": "[phone]"}
    assert tool["result"] == REDACTED
    assert call["end_reason"] == f"the caller gave {REDACTED}"
    assert call["summary"] == "Jane ([email]) asked about her order."
    # What the agent's workflow was made to collect is kept as collected (docs/privacy.md).
    assert call["variables"] == {"email": EMAIL}

    [request] = redacting.model.requests
    told = request["messages"][1]["content"]
    assert f"Caller: {REDACTED}" in told
    assert CARD not in told
    assert PHONE not in told

    exported = (await redacting.api.get("/api/calls.csv")).text
    [row] = csv.DictReader(io.StringIO(exported))
    assert row["end_reason"] == f"the caller gave {REDACTED}"
    assert not [said for said in (EMAIL, CARD, PHONE) if said in exported]


async def test_without_redaction_what_was_said_is_recorded_as_it_was(
    service: Service, api: httpx.AsyncClient, a_call: MakeCall
) -> None:
    async with TestKafkaBroker(service.broker) as bus:
        for topic, env in personal_call(a_call).values():
            await publish(bus, topic, env)
    await service.follow_up.drain()

    call = (await api.get("/api/calls/call-1")).json()
    assert call["turns"][0]["text"] == SAID
    assert call["end_reason"] == f"the caller gave {SAID}"
