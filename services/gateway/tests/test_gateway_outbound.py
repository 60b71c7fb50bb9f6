"""Outbound calls through the real twilio SDK against a local Twilio: placing, the status
callbacks' lifecycle on the bus, the answered call's agent and variables, hang-up and transfer,
answering-machine detection for the agents that listen for machines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from voicebus_contracts import envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec, Voicemail
from voicebus_contracts.topics import CALLS
from voicebus_devstack.fake_twilio import FakeTwilio
from voicebus_devstack.polling import until
from voicebus_gateway.app import create_app
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twilio.carrier import machine_detection_timeout_s
from voicebus_runtime.settings import BusSettings

from .conftest import Captured, Running, gateway_settings

pytestmark = pytest.mark.timeout(60)

OUR_NUMBER = "+15550100002"
CUSTOMER = "+15550100003"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def settings(analytics_url: str, twilio: FakeTwilio) -> GatewaySettings:
    base = gateway_settings(analytics_url)
    return gateway_settings(
        analytics_url,
        port=base.port,
        public_url=f"http://127.0.0.1:{base.port}",
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=SecretStr(twilio.auth_token),
        twilio_api_url=twilio.base_url,
        twilio_from_number=OUR_NUMBER,
    )


def events_of(calls: Captured, call_id: str) -> list[dict[str, Any]]:
    return [env["event"] for key, env in calls if key == call_id]


def statuses(calls: Captured, call_id: str) -> list[str]:
    return [e["status"] for e in events_of(calls, call_id) if e["type"] == "call.status"]


async def place(running: Running, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post("/api/calls", json=body)
    assert response.status_code == 201, response.text
    call_id: str = response.json()["call_id"]
    return call_id


async def test_an_answered_outbound_call_runs_its_lifecycle_on_the_bus(
    running: Running, twilio: FakeTwilio
) -> None:
    call_id = await place(
        running, {"to": CUSTOMER, "agent_id": "sales", "variables": {"first_name": "Ada"}}
    )
    created = next(r for r in twilio.requests if r.method == "POST")
    assert (created.form["To"], created.form["From"]) == ([CUSTOMER], [OUR_NUMBER])

    caller = await twilio.answered(call_id)
    calls = running.published[CALLS.name]
    await until(lambda: any(e["type"] == "call.started" for e in events_of(calls, call_id)))
    started = next(e for e in events_of(calls, call_id) if e["type"] == "call.started")
    assert started["direction"] == "outbound"
    assert started["agent_id"] == "sales"
    assert started["variables"] == {"first_name": "Ada"}
    assert (started["from_number"], started["to_number"]) == (OUR_NUMBER, CUSTOMER)

    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(f"/api/calls/{call_id}/hangup")
        assert response.status_code == 202
    await caller.wait_closed()
    assert await twilio.ended(call_id) == "completed"
    await until(lambda: "completed" in statuses(calls, call_id))
    assert statuses(calls, call_id) == ["initiated", "ringing", "in-progress", "completed"]
    assert {cb.status_code for cb in twilio.callbacks if cb.call_sid == call_id} == {204}
    # The stream's end is published once the gateway has let the call go: maybe after the
    # carrier's status callback.
    await until(lambda: any(e["type"] == "call.ended" for e in events_of(calls, call_id)))
    ended = [e for e in events_of(calls, call_id) if e["type"] == "call.ended"]
    assert [e["reason"] for e in ended] == ["hung up through the API"]


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
async def test_an_unanswered_call_ends_with_its_status(
    running: Running, twilio: FakeTwilio, outcome: str
) -> None:
    twilio.script(CUSTOMER, outcome)  # type: ignore[arg-type]
    call_id = await place(running, {"to": CUSTOMER})
    assert await twilio.ended(call_id) == outcome
    calls = running.published[CALLS.name]
    await until(lambda: outcome in statuses(calls, call_id))
    assert statuses(calls, call_id)[-1] == outcome
    assert not any(e["type"] == "call.started" for e in events_of(calls, call_id))


async def test_a_transfer_hands_the_call_to_twilio_to_dial(
    running: Running, twilio: FakeTwilio
) -> None:
    call_id = await place(running, {"to": CUSTOMER})
    caller = await twilio.answered(call_id)
    calls = running.published[CALLS.name]
    await until(lambda: any(e["type"] == "call.started" for e in events_of(calls, call_id)))
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(f"/api/calls/{call_id}/transfer", json={"to": "+14155550100"})
        assert response.status_code == 202
    await caller.wait_closed()
    assert twilio.transfers[call_id] == "+14155550100"
    await until(lambda: any(e["type"] == "call.ended" for e in events_of(calls, call_id)))
    ended = next(e for e in events_of(calls, call_id) if e["type"] == "call.ended")
    assert ended["reason"] == "transferred to +14155550100"


async def test_twilio_refusing_the_call_is_a_clear_422(
    settings: GatewaySettings, redis_url: str
) -> None:
    wrong_account = settings.model_copy(update={"twilio_account_sid": "AC" + "9" * 32})
    app = create_app(wrong_account, BusSettings(redis_url=redis_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/api/calls", json={"to": CUSTOMER})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"Twilio refused the call to {CUSTOMER}")


async def test_without_a_public_url_twilio_could_not_reach_us(analytics_url: str) -> None:
    settings = gateway_settings(
        analytics_url, twilio_account_sid="AC" + "1" * 32, twilio_from_number=OUR_NUMBER
    )
    transport = httpx.ASGITransport(app=create_app(settings, BusSettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.post("/api/calls", json={"to": CUSTOMER})
    assert response.status_code == 503
    assert "VOICEBUS_PUBLIC_URL" in response.json()["detail"]


async def campaign(client: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/campaigns/{campaign_id}")
    assert response.status_code == 200
    detail: dict[str, Any] = response.json()
    return detail


async def test_a_campaign_retries_a_busy_number_until_it_answers(
    running: Running, twilio: FakeTwilio
) -> None:
    busy_first = "+15550100004"
    twilio.script(busy_first, "busy")
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(
            "/api/campaigns",
            json={
                "agent_id": "sales",
                "rows": [{"to": busy_first, "variables": {"name": "Bo"}}],
                "concurrency": 1,
                "max_attempts": 3,
                "retry_delay_s": 0.2,
            },
        )
        assert response.status_code == 201, response.text
        campaign_id = response.json()["id"]

        first = None
        while first is None:
            rows = (await campaign(client, campaign_id))["rows"]
            first = rows[0]["attempts"][0]["call_id"] if rows[0]["attempts"] else None
            await asyncio.sleep(0.05)
        assert await twilio.ended(first) == "busy"
        twilio.script(busy_first, "answer")  # the line is free now

        second = None
        while second is None:
            attempts = (await campaign(client, campaign_id))["rows"][0]["attempts"]
            second = attempts[1]["call_id"] if len(attempts) > 1 else None
            await asyncio.sleep(0.05)
        caller = await twilio.answered(second)
        calls = running.published[CALLS.name]
        await until(lambda: any(e["type"] == "call.started" for e in events_of(calls, second)))
        started = next(e for e in events_of(calls, second) if e["type"] == "call.started")
        assert (started["agent_id"], started["variables"]) == ("sales", {"name": "Bo"})
        await caller.hang_up()
        assert await twilio.ended(second) == "completed"

        detail = await campaign(client, campaign_id)
        while detail["state"] != "finished":
            await asyncio.sleep(0.05)
            detail = await campaign(client, campaign_id)
    [row] = detail["rows"]
    assert row["state"] == "completed"
    assert [a["outcome"] for a in row["attempts"]] == ["busy", "completed"]


MACHINE_DETECTION = (
    "MachineDetection",
    "MachineDetectionTimeout",
    "AsyncAmd",
    "AsyncAmdStatusCallback",
    "AsyncAmdStatusCallbackMethod",
)


def announce(running: Running, agent_id: str, voicemail: Voicemail) -> None:
    """The agent service announcing an agent, as the gateway hears it on the bus."""
    agent = AgentSpec(agent_id=agent_id, name=agent_id.title(), voicemail=voicemail)
    running.gateway.agents.heard(
        envelope(AgentConfigured(agent=agent), call_id=agent_id, producer="agent")
    )


def created_form(twilio: FakeTwilio, to: str) -> dict[str, list[str]]:
    """What the gateway asked Twilio for when it placed the call to `to`."""
    return next(r.form for r in twilio.requests if r.method == "POST" and r.form["To"] == [to])


async def test_an_agent_listening_for_machines_gets_twilios_decision_on_the_bus(
    running: Running, twilio: FakeTwilio, settings: GatewaySettings
) -> None:
    announce(running, "reminders", Voicemail(detect=True, decision_timeout_ms=8_500))
    twilio.script(CUSTOMER, answered_by="machine_end_beep", detection_ms=200)
    call_id = await place(running, {"to": CUSTOMER, "agent_id": "reminders"})

    form = created_form(twilio, CUSTOMER)
    assert (form["MachineDetection"], form["AsyncAmd"]) == (["DetectMessageEnd"], ["true"])
    assert form["MachineDetectionTimeout"] == ["8"]
    assert form["AsyncAmdStatusCallbackMethod"] == ["POST"]
    [callback] = form["AsyncAmdStatusCallback"]
    assert callback.startswith(f"{settings.public_url}/twilio/machine-detection?placement=")
    # The decision's URL names the call's placement, as its voice webhook's does.
    assert parse_qs(urlsplit(callback).query) == parse_qs(urlsplit(form["Url"][0]).query)

    caller = await twilio.answered(call_id)
    calls = running.published[CALLS.name]
    await until(lambda: any(e["type"] == "call.answered_by" for e in events_of(calls, call_id)))
    [answered] = [e for e in events_of(calls, call_id) if e["type"] == "call.answered_by"]
    assert (answered["answered_by"], answered["detection_ms"]) == ("machine_end_beep", 200)
    await caller.hang_up()
    assert await twilio.ended(call_id) == "completed"
    amd = [cb for cb in twilio.callbacks if cb.call_sid == call_id and cb.event == "amd"]
    assert [cb.status_code for cb in amd] == [204]


@pytest.mark.parametrize("agent_id", ["chatty", "never-announced"])
async def test_calls_of_other_agents_are_placed_without_machine_detection(
    running: Running, twilio: FakeTwilio, agent_id: str
) -> None:
    announce(running, "chatty", Voicemail(detect=False, message="Call us back"))
    call_id = await place(running, {"to": CUSTOMER, "agent_id": agent_id})

    assert set(created_form(twilio, CUSTOMER)).isdisjoint(MACHINE_DETECTION)
    caller = await twilio.answered(call_id)
    await caller.hang_up()
    assert await twilio.ended(call_id) == "completed"
    assert [cb.event for cb in twilio.callbacks if cb.call_sid == call_id] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]


async def test_a_campaign_of_an_agent_listening_for_machines_asks_twilio_to_detect_them(
    running: Running, twilio: FakeTwilio
) -> None:
    announce(running, "reminders", Voicemail(detect=True, decision_timeout_ms=20_000))
    twilio.script(CUSTOMER, "no-answer")
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        response = await client.post(
            "/api/campaigns",
            json={"agent_id": "reminders", "rows": [{"to": CUSTOMER}], "max_attempts": 1},
        )
        assert response.status_code == 201, response.text
        campaign_id = response.json()["id"]
        detail = await campaign(client, campaign_id)
        while detail["state"] != "finished":
            await asyncio.sleep(0.05)
            detail = await campaign(client, campaign_id)
    assert detail["rows"][0]["state"] == "no-answer"
    form = created_form(twilio, CUSTOMER)
    assert (form["MachineDetection"], form["MachineDetectionTimeout"]) == (
        ["DetectMessageEnd"],
        ["20"],
    )


@pytest.mark.parametrize(
    ("decision_timeout_ms", "twilio_timeout_s"),
    [(1_000, 3), (8_999, 8), (10_000, 10), (60_000, 59)],
)
def test_twilio_decides_before_the_agent_stops_waiting_within_its_bounds(
    decision_timeout_ms: int, twilio_timeout_s: int
) -> None:
    voicemail = Voicemail(detect=True, decision_timeout_ms=decision_timeout_ms)
    assert machine_detection_timeout_s(voicemail) == twilio_timeout_s
