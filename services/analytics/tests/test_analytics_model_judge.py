"""Post-call results judged by a language model (a local OpenAI-compatible fake, driven by the
openai SDK), through the service's consumers on SQLite and PostgreSQL: what the model is asked,
its answer on the record, and the offline way where the answer does not fit or never comes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from voicebus_analytics.app import create_service
from voicebus_analytics.follow_up import FollowUp
from voicebus_analytics.model_judge import ModelJudge
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_contracts import WorkflowProgressed, envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec, LanguageModel, PostCall
from voicebus_contracts.topics import AGENTS, TOOLS
from voicebus_devstack.fake_openai import FakeOpenAI
from voicebus_devstack.polling import until
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings

MakeCall = Callable[..., dict[str, Any]]
Record = Callable[..., Awaitable[None]]
T0 = 1_750_000_000.0
KEY_SECRET = "JUDGE_KEY"
SUCCESS = "The caller learns when the order arrives."
SCHEMA = {
    "type": "object",
    "properties": {
        "order_number": {"type": "string"},
        "guests": {"type": "integer"},
        "vip": {"type": "boolean"},
        "email": {"type": "string"},
    },
    "required": ["order_number"],
}
OFFLINE_SUMMARY = "Caller: Where is my order?\nAgent: Let me check. It ships today."


@dataclass
class Judged:
    """The service with a model to judge its calls, and that model."""

    bus: KafkaBroker
    api: httpx.AsyncClient
    follow_up: FollowUp
    model: FakeOpenAI

    async def announce(self, *, llm: LanguageModel | None) -> None:
        agent = AgentSpec(
            agent_id="support",
            name="Support",
            llm=llm,
            post_call=PostCall(extraction=SCHEMA, success=SUCCESS),
        )
        announced = envelope(AgentConfigured(agent=agent), call_id="support", producer="agent")
        await publish(self.bus, AGENTS, announced)

    async def publish_call(self, a_call: MakeCall, call_id: str = "call-1") -> None:
        """A whole call whose workflow collected the order number (no follow-up awaited)."""
        events = a_call(call_id, at=T0)
        events["progressed"] = (
            TOOLS,
            envelope(
                WorkflowProgressed(node="done", variables={"order_number": "A-1042"}),
                call_id=call_id,
                producer="agent",
            ).model_copy(update={"created_at": T0 + 5}),
        )
        for topic, env in events.values():
            await publish(self.bus, topic, env)

    async def call(self, a_call: MakeCall) -> dict[str, Any]:
        """A whole call, followed up: its record."""
        await self.publish_call(a_call)
        await self.follow_up.drain()
        record: dict[str, Any] = (await self.api.get("/api/calls/call-1")).json()
        return record


def agents_model(fake: FakeOpenAI) -> LanguageModel:
    return LanguageModel(
        model="judge-1", base_url=fake.base_url, temperature=0.3, api_key_secret=KEY_SECRET
    )


@pytest.fixture
async def judged(store: SqlCallStore) -> AsyncIterator[Judged]:
    """The service whose agents' models are reachable with their keys, and analytics' own
    model on the same endpoint."""
    async with FakeOpenAI() as fake:
        judge = ModelJudge(
            service_base_url=fake.base_url,
            service_api_key=fake.api_key,
            secrets={f"VOICEBUS_SECRET_{KEY_SECRET}": fake.api_key},
        )
        service = create_service(
            store,
            bus=BusSettings(),
            judge=judge,
            service_model=LanguageModel(model="analytics-1", base_url=fake.base_url),
        )
        transport = httpx.ASGITransport(app=service.api)
        async with (
            TestKafkaBroker(service.broker) as bus,
            httpx.AsyncClient(transport=transport, base_url="http://analytics") as api,
        ):
            yield Judged(bus, api, service.follow_up, fake)
            await service.follow_up.aclose()
        await judge.aclose()


async def test_the_agents_model_reads_the_call_and_its_answer_lands_on_the_record(
    judged: Judged, a_call: MakeCall
) -> None:
    await judged.announce(llm=agents_model(judged.model))
    judged.model.answer(
        json.dumps(
            {
                "summary": "The caller asked about order A-1042; it ships today.",
                "extraction": {"order_number": "A-1042", "guests": None, "vip": False},
                "succeeded": False,
                "reason": "The agent said when it ships, not when it arrives.",
            }
        )
    )

    call = await judged.call(a_call)

    [request] = judged.model.requests
    assert (request["model"], request["temperature"]) == ("judge-1", 0.3)
    assert request["response_format"] == {"type": "json_object"}
    assert not request.get("stream")
    task, told = (m["content"] for m in request["messages"])
    assert json.dumps(SCHEMA) in task
    assert SUCCESS in task
    assert "Caller: Where is my order?" in told
    assert "Agent: Let me check. It ships today." in told
    assert 'order_status({"order": "A-1042"}) -> shipped' in told
    assert call["summary"] == "The caller asked about order A-1042; it ships today."
    assert call["extraction"] == {
        "order_number": "A-1042",
        "guests": None,
        "vip": False,
        "email": None,
    }
    assert call["succeeded"] is False
    assert call["success_reason"] == "The agent said when it ships, not when it arrives."


async def test_each_part_of_an_answer_that_does_not_fit_is_drawn_offline(
    judged: Judged, a_call: MakeCall
) -> None:
    await judged.announce(llm=agents_model(judged.model))
    judged.model.answer(
        json.dumps(
            {
                "summary": "   ",
                "extraction": {
                    "order_number": 1042,  # not a string: the workflow's value instead
                    "guests": "3",  # a number in a text: read as one
                    "vip": "maybe",  # neither: nothing to fall back on
                    "email": "ana@example.com",
                    "unasked": "x",
                },
                "succeeded": "yes",
                "reason": "It went well.",
            }
        )
    )

    call = await judged.call(a_call)

    assert call["summary"] == OFFLINE_SUMMARY
    assert call["extraction"] == {
        "order_number": "A-1042",
        "guests": 3,
        "vip": None,
        "email": "ana@example.com",
    }
    assert call["succeeded"] is True
    assert "judged offline" in call["success_reason"]


@pytest.mark.parametrize(
    ("api_key_secret", "answer", "why"),
    [
        ("UNSET_KEY", "{}", "Incorrect API key"),  # no key: the endpoint refuses the call
        (KEY_SECRET, "Sure! The caller wanted their order.", "no JSON"),
        (KEY_SECRET, '["a list"]', "no JSON object"),
    ],
    ids=["refused", "not-json", "not-an-object"],
)
async def test_a_model_that_gives_no_judgement_leaves_the_call_concluded_offline(
    judged: Judged,
    a_call: MakeCall,
    caplog: pytest.LogCaptureFixture,
    *,
    api_key_secret: str,
    answer: str,
    why: str,
) -> None:
    model = agents_model(judged.model).model_copy(update={"api_key_secret": api_key_secret})
    await judged.announce(llm=model)
    judged.model.answer(answer)

    call = await judged.call(a_call)

    assert call["summary"] == OFFLINE_SUMMARY
    assert call["extraction"]["order_number"] == "A-1042"
    assert call["succeeded"] is True
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "call call-1" in warning.getMessage()
    assert why in warning.getMessage()


async def test_the_call_of_an_agent_without_a_model_is_judged_by_analytics_model(
    judged: Judged, a_call: MakeCall
) -> None:
    await judged.announce(llm=None)
    judged.model.answer(json.dumps({"summary": "Order status call."}))

    call = await judged.call(a_call)

    assert [r["model"] for r in judged.model.requests] == ["analytics-1"]
    assert call["summary"] == "Order status call."


async def test_a_call_in_which_nobody_spoke_is_not_judged(judged: Judged, a_call: MakeCall) -> None:
    await judged.announce(llm=agents_model(judged.model))
    for name in ("started", "ended"):
        await publish(judged.bus, *a_call("call-1", at=T0)[name])
    await judged.follow_up.drain()

    call = (await judged.api.get("/api/calls/call-1")).json()

    assert judged.model.requests == []
    assert call["summary"] is None
    assert call["succeeded"] is False


async def test_other_calls_are_recorded_while_a_model_judges_an_ended_one(
    judged: Judged, a_call: MakeCall
) -> None:
    await judged.announce(llm=agents_model(judged.model))
    judged.model.gate = asyncio.Event()
    judged.model.answer(json.dumps({"summary": "Judged."}))
    await judged.publish_call(a_call)
    await until(lambda: bool(judged.model.requests), what="the model asked about call-1")

    for name in ("started", "transcript"):
        await publish(judged.bus, *a_call("call-2", at=T0 + 60)[name])
    other = (await judged.api.get("/api/calls/call-2")).json()
    waiting = (await judged.api.get("/api/calls/call-1")).json()

    assert [t["text"] for t in other["turns"]] == ["Where is my order?"]
    assert (waiting["status"], waiting["summary"]) == ("completed", None)

    judged.model.gate.set()
    await judged.follow_up.drain()

    assert (await judged.api.get("/api/calls/call-1")).json()["summary"] == "Judged."


async def test_a_call_ended_before_a_stop_is_judged_at_the_next_start(
    judged: Judged, a_call: MakeCall, record: Record
) -> None:
    await judged.announce(llm=agents_model(judged.model))
    await record(*a_call("call-1", at=T0).values())  # recorded by an analytics that then stopped
    judged.model.answer(json.dumps({"summary": "Judged after a restart."}))

    await judged.follow_up.resume()
    await judged.follow_up.drain()

    call = (await judged.api.get("/api/calls/call-1")).json()
    assert call["summary"] == "Judged after a restart."
    assert len(judged.model.requests) == 1
