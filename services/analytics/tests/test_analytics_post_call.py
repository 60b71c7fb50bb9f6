"""After a call: its summary, extraction and success on the record, and its agent's webhook told
(signed, retried, logged), through the service's consumers on SQLite and PostgreSQL, with a local
webhook receiver; and what a stop cut short, taken up at the next start."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voicebus_analytics.app import Service, create_service
from voicebus_analytics.follow_up import FollowUp
from voicebus_analytics.post_call import Conclusion, extract, fit
from voicebus_analytics.records import DeliveryAttempt
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_analytics.webhooks import Webhooks
from voicebus_contracts import WorkflowProgressed, envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec, PostCall
from voicebus_contracts.topics import AGENTS, TOOLS
from voicebus_devstack.asgi import serve_asgi
from voicebus_devstack.polling import until
from voicebus_runtime.bus import ensure_topics, make_broker, publish
from voicebus_runtime.settings import BusSettings

MakeCall = Callable[..., dict[str, Any]]
Record = Callable[..., Awaitable[None]]
T0 = 1_750_000_000.0
SECRET = "whsec-test"
SECRETS = {"VOICEBUS_SECRET_HOOK_KEY": SECRET}
SCHEMA = {
    "type": "object",
    "properties": {
        "order_number": {"type": "string"},
        "guests": {"type": "integer"},
        "deposit": {"type": "number"},
        "vip": {"type": "boolean"},
        "email": {"type": "string"},
    },
    "required": ["order_number", "guests"],
}


@dataclass
class Receiver:
    """A webhook receiver answering each POST with the next of `statuses` (then the last)."""

    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses[min(len(self.received), len(self.statuses)) - 1])


def with_variables(events: dict[str, Any], **variables: str) -> dict[str, Any]:
    """The events of a call whose workflow collected `variables`."""
    events["progressed"] = (
        TOOLS,
        envelope(
            WorkflowProgressed(node="done", variables=variables),
            call_id="call-1",
            producer="agent",
        ).model_copy(update={"created_at": T0 + 5}),
    )
    return events


@dataclass
class Harness:
    bus: KafkaBroker
    api: httpx.AsyncClient
    follow_up: FollowUp
    url: str

    async def announce(self, **post_call: Any) -> None:
        agent = AgentSpec(agent_id="support", name="Support", post_call=PostCall(**post_call))
        announced = envelope(AgentConfigured(agent=agent), call_id="support", producer="agent")
        await publish(self.bus, AGENTS, announced)

    async def call(self, a_call: MakeCall, *, ended_twice: bool = False, **variables: str) -> None:
        """A whole call whose workflow collected `variables`; waits for its webhook."""
        await self.publish_call(a_call, ended_twice=ended_twice, **variables)
        await self.follow_up.drain()

    async def publish_call(
        self, a_call: MakeCall, *, ended_twice: bool = False, **variables: str
    ) -> None:
        """A whole call whose workflow collected `variables`, recorded."""
        events = with_variables(a_call("call-1", at=T0), **variables)
        for topic, env in events.values():
            await publish(self.bus, topic, env)
        if ended_twice:
            await publish(self.bus, *events["ended"])

    async def start_again(self) -> None:
        """What analytics does when it starts (its catalog read): take up what was cut short."""
        await self.follow_up.resume()
        await self.follow_up.drain()


def hooked(statuses: list[int]) -> Callable[..., Any]:
    """A fixture: the service with webhooks that retry at once, and a receiver of `statuses`."""

    @pytest.fixture
    async def harness(store: SqlCallStore) -> AsyncIterator[tuple[Harness, Receiver]]:
        receiver = Receiver(statuses)
        app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
        webhooks = Webhooks(store=store, attempts=5, backoff_s=0.0, secrets=SECRETS)
        service: Service = create_service(store, bus=BusSettings(), webhooks=webhooks)
        transport = httpx.ASGITransport(app=service.api)
        async with (
            serve_asgi(app) as base_url,
            TestKafkaBroker(service.broker) as bus,
            httpx.AsyncClient(transport=transport, base_url="http://analytics") as api,
        ):
            yield Harness(bus, api, service.follow_up, f"{base_url}/hook"), receiver
            await service.follow_up.aclose()

    return harness


accepting = hooked([200])
flaky = hooked([503, 503, 200])
refusing = hooked([400])


def utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def test_extraction_types_each_variable_per_the_schema_and_nulls_what_does_not_fit() -> None:
    schema = {
        "properties": {
            "guests": {"type": "integer"},
            "deposit": {"type": ["number", "null"]},
            "vip": {"type": "boolean"},
            "size": {"type": "string", "enum": ["S", "M"]},
            "party": {"type": "integer"},
            "email": {},
            "absent": {"type": "string"},
        }
    }
    variables = {
        "guests": " 4 ",
        "deposit": "12.5",
        "vip": "Yes",
        "size": "XL",
        "party": "four",
        "email": "a@b.example",
        "unasked": "x",
    }

    assert extract(schema, variables) == {
        "guests": 4,
        "deposit": 12.5,
        "vip": True,
        "size": None,
        "party": None,
        "email": "a@b.example",
        "absent": None,
    }


@pytest.mark.parametrize(
    ("value", "spec", "fitted"),
    [
        (4, {"type": "integer"}, 4),
        (4.0, {"type": "integer"}, 4),
        (4.5, {"type": "integer"}, None),
        (True, {"type": "integer"}, None),  # JSON's true is no number
        ("4", {"type": "integer"}, 4),
        (4, {"type": "number"}, 4),
        (False, {"type": "boolean"}, False),
        (0, {"type": "boolean"}, None),
        (1042, {"type": "string"}, None),
        (["a", "b"], {"type": "array"}, ["a", "b"]),
        ({"a": 1}, {"type": ["object", "null"]}, {"a": 1}),
        ("M", {"type": "string", "enum": ["S", "M"]}, "M"),
        ("XL", {"type": "string", "enum": ["S", "M"]}, None),
        (None, {"type": "string"}, None),
    ],
)
def test_a_models_value_fits_a_property_only_as_its_type(
    value: Any, spec: Any, fitted: Any
) -> None:
    assert fit(value, spec) == fitted
    assert type(fit(value, spec)) is type(fitted)


def test_the_models_extraction_comes_first_and_the_workflows_fills_what_it_lacks() -> None:
    schema = {"properties": {"guests": {"type": "integer"}, "day": {}, "time": {}}}
    variables = {"guests": "4", "day": "Monday", "time": "09:00"}

    assert extract(schema, variables, {"guests": 5, "day": None, "time": 9}) == {
        "guests": 5,
        "day": "Monday",
        "time": "09:00",
    }


async def test_an_ended_call_carries_its_summary_extraction_and_success(
    accepting: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, _ = accepting
    await harness.announce(extraction=SCHEMA, success="The caller learns where the order is.")

    await harness.call(a_call, order_number="A-1042", guests="4", deposit="12.50", vip="no")

    call = (await harness.api.get("/api/calls/call-1")).json()
    assert call["summary"] == "Caller: Where is my order?\nAgent: Let me check. It ships today."
    assert call["extraction"] == {
        "order_number": "A-1042",
        "guests": 4,
        "deposit": 12.5,
        "vip": False,
        "email": None,
    }
    assert call["succeeded"] is True
    assert "hangup" in call["success_reason"]


async def test_a_required_fact_not_collected_fails_the_call_and_says_which(
    accepting: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, _ = accepting
    await harness.announce(extraction=SCHEMA)

    await harness.call(a_call, order_number="A-1042", guests="a few")

    call = (await harness.api.get("/api/calls/call-1")).json()
    assert call["extraction"]["guests"] is None
    assert call["succeeded"] is False
    assert "guests" in call["success_reason"]
    assert "order_number" not in call["success_reason"]


async def test_the_webhook_is_signed_with_the_secret_over_the_timestamp_and_body(
    accepting: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, receiver = accepting
    await harness.announce(extraction=SCHEMA, webhook_url=harness.url, webhook_secret="HOOK_KEY")

    await harness.call(a_call, order_number="A-1042", guests="2")

    [(headers, body)] = receiver.received
    timestamp = headers["x-voicebus-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["x-voicebus-signature"] == f"sha256={expected.hexdigest()}"
    sent = json.loads(body)
    assert sent["event"] == "call.ended"
    assert sent["call"] == (await harness.api.get("/api/calls/call-1")).json()
    assert sent["call"]["extraction"]["guests"] == 2


async def test_a_failing_receiver_is_retried_until_it_accepts_and_each_attempt_is_logged(
    flaky: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, receiver = flaky
    await harness.announce(webhook_url=harness.url, webhook_secret="HOOK_KEY")

    await harness.call(a_call, ended_twice=True)

    deliveries = (await harness.api.get("/api/calls/call-1/webhooks")).json()
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [
        (1, 503),
        (2, 503),
        (3, 200),
    ]
    assert {d["url"] for d in deliveries} == {harness.url}
    assert len(receiver.received) == 3


async def test_a_refusal_is_not_retried(
    refusing: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, receiver = refusing
    await harness.announce(webhook_url=harness.url, webhook_secret="HOOK_KEY")

    await harness.call(a_call)

    deliveries = (await harness.api.get("/api/calls/call-1/webhooks")).json()
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 400)]
    assert len(receiver.received) == 1


async def test_a_webhook_whose_secret_is_not_set_is_not_sent_and_says_why(
    accepting: tuple[Harness, Receiver], a_call: MakeCall, caplog: pytest.LogCaptureFixture
) -> None:
    harness, receiver = accepting
    await harness.announce(webhook_url=harness.url, webhook_secret="UNSET_KEY")

    await harness.call(a_call)

    [delivery] = (await harness.api.get("/api/calls/call-1/webhooks")).json()
    assert delivery["status_code"] is None
    assert "VOICEBUS_SECRET_UNSET_KEY" in delivery["error"]
    assert receiver.received == []
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "VOICEBUS_SECRET_UNSET_KEY" in error.getMessage()


async def test_the_webhook_log_of_an_unknown_call_is_a_404(
    accepting: tuple[Harness, Receiver],
) -> None:
    harness, _ = accepting

    assert (await harness.api.get("/api/calls/nobody/webhooks")).status_code == 404


async def test_a_call_whose_end_was_recorded_but_not_followed_up_is_at_the_next_start(
    accepting: tuple[Harness, Receiver], a_call: MakeCall, record: Record
) -> None:
    harness, receiver = accepting
    await harness.announce(extraction=SCHEMA, webhook_url=harness.url, webhook_secret="HOOK_KEY")
    # Recorded to its end by an analytics that stopped before it concluded the call.
    await record(*with_variables(a_call("call-1", at=T0), order_number="A-1042").values())
    assert (await harness.api.get("/api/calls/call-1")).json()["summary"] is None

    await harness.start_again()
    await harness.start_again()

    call = (await harness.api.get("/api/calls/call-1")).json()
    assert call["summary"] == "Caller: Where is my order?\nAgent: Let me check. It ships today."
    assert call["extraction"]["order_number"] == "A-1042"
    [(_, body)] = receiver.received
    assert json.loads(body)["call"] == call


async def test_a_webhook_cut_short_by_a_stop_is_told_at_the_next_start_counting_on(
    accepting: tuple[Harness, Receiver],
    a_call: MakeCall,
    record: Record,
    store: SqlCallStore,
) -> None:
    harness, receiver = accepting
    await harness.announce(webhook_url=harness.url, webhook_secret="HOOK_KEY")
    await record(*a_call("call-1", at=T0).values())
    # Concluded, then stopped after the first attempt failed.
    concluded = Conclusion(
        summary="Caller: Hi", extraction=None, succeeded=None, success_reason=None
    )
    assert await store.conclude_call("call-1", concluded, at=utc(T0 + 11))
    await store.record_delivery(
        DeliveryAttempt(
            call_id="call-1",
            url=harness.url,
            attempt=1,
            status_code=503,
            error=None,
            at=utc(T0 + 12),
        )
    )

    await harness.start_again()
    await harness.start_again()

    deliveries = (await harness.api.get("/api/calls/call-1/webhooks")).json()
    assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(1, 503), (2, 200)]
    [(_, body)] = receiver.received
    assert json.loads(body)["call"]["summary"] == "Caller: Hi"


async def test_calls_ended_while_follow_ups_are_held_wait_for_their_agent(
    accepting: tuple[Harness, Receiver], a_call: MakeCall
) -> None:
    harness, receiver = accepting
    harness.follow_up.hold()  # as at start, until the agent catalog is read

    await harness.publish_call(a_call, order_number="A-1042", guests="2")
    await harness.announce(extraction=SCHEMA, webhook_url=harness.url, webhook_secret="HOOK_KEY")
    assert (await harness.api.get("/api/calls/call-1")).json()["summary"] is None

    await harness.start_again()

    call = (await harness.api.get("/api/calls/call-1")).json()
    assert call["extraction"]["guests"] == 2
    assert len(receiver.received) == 1


async def test_a_call_that_ended_while_analytics_was_down_is_concluded_for_its_agent_at_start(
    kafka_bootstrap: str, store: SqlCallStore, record: Record, a_call: MakeCall
) -> None:
    run = uuid.uuid4().hex[:8]
    agent_id, call_id = f"support-{run}", f"call-{run}"
    receiver = Receiver([200])
    hooks = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    async with serve_asgi(hooks) as base_url:
        post_call = PostCall(
            extraction=SCHEMA, webhook_url=f"{base_url}/hook", webhook_secret="HOOK_KEY"
        )
        agent = AgentSpec(agent_id=agent_id, name="Support", post_call=post_call)
        await ensure_topics(kafka_bootstrap, [AGENTS])
        announcer = make_broker(kafka_bootstrap, client_id=f"announcer-{run}")
        await announcer.start()
        try:
            announced = envelope(AgentConfigured(agent=agent), call_id=agent_id, producer="agent")
            await publish(announcer, AGENTS, announced)
        finally:
            await announcer.stop()
        # Recorded to its end by an analytics that stopped before it concluded the call.
        await record(*a_call(call_id, at=T0, agent_id=agent_id).values())
        bus = BusSettings(kafka_bootstrap=kafka_bootstrap, instance_id=f"analytics-{run}")
        webhooks = Webhooks(store=store, backoff_s=0.0, secrets=SECRETS)
        service = create_service(store, bus=bus, webhooks=webhooks)

        async with service.api.router.lifespan_context(service.api):
            await until(lambda: bool(receiver.received), what="the webhook", timeout_s=30)

    [(_, body)] = receiver.received
    told = json.loads(body)["call"]
    assert told["call_id"] == call_id
    assert told["extraction"]["order_number"] == "A-1042"  # the agent's schema, read at start
