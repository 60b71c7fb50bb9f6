"""Twilio's webhooks: only signed ones are obeyed, and only our TwiML's streams get in."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voicebus_contracts import envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec
from voicebus_contracts.topics import CALLS
from voicebus_devstack.polling import until
from voicebus_gateway.app import create_app
from voicebus_gateway.placements import Placement
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twilio.security import StreamTokenError, StreamTokens
from voicebus_runtime.settings import BusSettings

from .conftest import (
    AUTH_TOKEN,
    TWILIO_CONNECTED,
    Running,
    answer_call,
    gateway_settings,
    open_call,
    post_signed,
    signature,
    stream_of,
    twilio_start,
    voice_form,
)

PUBLIC_URL = "https://voice.example.com/edge"


async def post_voice(
    settings: GatewaySettings,
    form: dict[str, str],
    headers: dict[str, str],
    *,
    app: FastAPI | None = None,
) -> httpx.Response:
    """POST Twilio's voice webhook to a gateway (`app`, or one made with `settings`) reached
    through a proxy at 10.0.0.7."""
    transport = httpx.ASGITransport(app=app or create_app(settings, BusSettings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.7:8080") as client:
        return await client.post("/twilio/voice", data=form, headers=headers)


@pytest.fixture
def behind_proxy(analytics_url: str) -> GatewaySettings:
    return gateway_settings(analytics_url, public_url=PUBLIC_URL)


async def test_a_signed_webhook_over_the_public_url_is_answered(
    behind_proxy: GatewaySettings,
) -> None:
    form = voice_form("CA1")
    sig = signature(f"{PUBLIC_URL}/twilio/voice", form)
    response = await post_voice(behind_proxy, form, {"X-Twilio-Signature": sig})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    url, parameters = stream_of(response.text)
    assert url == "wss://voice.example.com/edge/twilio/media"
    assert parameters["agent_id"] == "default"
    assert (parameters["From"], parameters["To"]) == ("+15550100001", "+15550100002")
    StreamTokens(AUTH_TOKEN, ttl_s=60).check(parameters["token"], "CA1", parameters)


TAMPERED = {**voice_form("CA1"), "From": "+15550199999"}


@pytest.mark.parametrize(
    ("sent", "signed_url", "auth_token"),
    [
        (TAMPERED, f"{PUBLIC_URL}/twilio/voice", AUTH_TOKEN),
        (voice_form("CA1"), "http://10.0.0.7:8080/twilio/voice", AUTH_TOKEN),
        (voice_form("CA1"), f"{PUBLIC_URL}/twilio/voice", "another account's token"),
    ],
    ids=["tampered body", "wrong URL", "wrong account"],
)
async def test_a_webhook_not_signed_by_twilio_is_refused(
    behind_proxy: GatewaySettings,
    caplog: pytest.LogCaptureFixture,
    sent: dict[str, str],
    signed_url: str,
    auth_token: str,
) -> None:
    sig = signature(signed_url, voice_form("CA1"), auth_token)
    with caplog.at_level(logging.WARNING):
        response = await post_voice(behind_proxy, sent, {"X-Twilio-Signature": sig})
    assert response.status_code == 403
    assert response.json() == {"detail": "invalid Twilio signature"}
    assert "invalid signature" in caplog.text


async def test_a_webhook_without_signature_is_refused(behind_proxy: GatewaySettings) -> None:
    response = await post_voice(behind_proxy, voice_form("CA1"), {})
    assert response.status_code == 403


async def test_without_an_auth_token_webhooks_are_refused_naming_the_variable(
    analytics_url: str,
) -> None:
    settings = gateway_settings(analytics_url, twilio_auth_token=None)
    form = voice_form("CA1")
    response = await post_voice(settings, form, {"X-Twilio-Signature": signature("x", form)})
    assert response.status_code == 503
    assert "TWILIO_AUTH_TOKEN" in response.json()["detail"]


async def test_the_number_called_chooses_the_agent(analytics_url: str) -> None:
    settings = gateway_settings(
        analytics_url, public_url=PUBLIC_URL, number_agents={"+15550100002": "sales"}
    )
    for to, agent in (("+15550100002", "sales"), ("+15550100003", "default")):
        form = voice_form("CA1", to=to)
        sig = signature(f"{PUBLIC_URL}/twilio/voice", form)
        response = await post_voice(settings, form, {"X-Twilio-Signature": sig})
        assert stream_of(response.text)[1]["agent_id"] == agent


async def test_an_agent_that_claims_the_number_called_answers_it(analytics_url: str) -> None:
    settings = gateway_settings(
        analytics_url, public_url=PUBLIC_URL, number_agents={"+15550100002": "sales"}
    )
    app = create_app(settings, BusSettings())
    support = AgentSpec(agent_id="support", name="Support", phone_numbers=("+15550100002",))
    announced = envelope(AgentConfigured(agent=support), call_id="support", producer="agent")
    app.state.gateway.agents.heard(announced)
    form = voice_form("CA1", to="+15550100002")
    sig = signature(f"{PUBLIC_URL}/twilio/voice", form)

    response = await post_voice(settings, form, {"X-Twilio-Signature": sig}, app=app)

    # The agent catalog wins over the environment's mapping.
    assert stream_of(response.text)[1]["agent_id"] == "support"


def test_number_agents_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_GATEWAY_NUMBER_AGENTS", "+15550100002=sales, +15550100003=support")
    assert GatewaySettings().number_agents == {"+15550100002": "sales", "+15550100003": "support"}
    monkeypatch.setenv("VOICEBUS_GATEWAY_NUMBER_AGENTS", "+15550100002")
    with pytest.raises(ValueError, match="expected \\+number=agent_id"):
        GatewaySettings()


def test_stream_tokens_bind_the_call_and_its_parameters() -> None:
    tokens = StreamTokens(AUTH_TOKEN, ttl_s=60)
    parameters = {"agent_id": "sales", "From": "+15550100001"}
    token = tokens.issue("CA1", parameters)
    tokens.check(token, "CA1", {**parameters, "token": token})
    for call, params in (("CA2", parameters), ("CA1", {**parameters, "agent_id": "admin"})):
        with pytest.raises(StreamTokenError, match="not valid for this call"):
            tokens.check(token, call, params)
    with pytest.raises(StreamTokenError, match="expired"):
        tokens.check(tokens.issue("CA1", parameters, now=0.0), "CA1", parameters)
    with pytest.raises(StreamTokenError, match="no stream token"):
        tokens.check(None, "CA1", parameters)
    with pytest.raises(StreamTokenError, match="malformed"):
        tokens.check("garbage", "CA1", parameters)
    other_account = StreamTokens("another-auth-token", ttl_s=60).issue("CA1", parameters)
    with pytest.raises(StreamTokenError):
        tokens.check(other_account, "CA1", parameters)


@pytest.mark.parametrize(
    "parameters",
    [
        {"agent_id": "default"},  # no token: not from our TwiML
        "forged agent",
    ],
)
async def test_a_stream_without_a_valid_token_is_refused(
    running: Running, parameters: dict[str, str] | str
) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    if parameters == "forged agent":
        answered = await answer_call(running, call_sid)
        parameters = {**answered, "agent_id": "admin"}
    async with connect(f"ws://{running.base_url}/twilio/media") as socket:
        await socket.send(TWILIO_CONNECTED)
        await socket.send(twilio_start(call_sid, parameters))  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "token" in closed.value.rcvd.reason
    assert running.published[CALLS.name] == []


async def test_status_callbacks_become_call_status_events(running: Running) -> None:
    calls = running.published[CALLS.name]
    url = f"{running.http_url}/twilio/status"
    form = {
        "CallSid": "CA-status",
        "CallStatus": "ringing",
        "Direction": "outbound-api",
        "To": "+15550100003",
        "From": "+15550100002",
        "SequenceNumber": "1",
    }
    async with httpx.AsyncClient() as client:
        assert (await post_signed(client, url, form)).status_code == 204
        assert (await post_signed(client, url, form)).status_code == 204  # Twilio retried
        done = {**form, "CallStatus": "completed", "CallDuration": "42", "SequenceNumber": "3"}
        assert (await post_signed(client, url, done)).status_code == 204
        unknown = {**form, "CallStatus": "exploded"}
        assert (await post_signed(client, url, unknown)).status_code == 400
        forged = await client.post(url, data=done, headers={"X-Twilio-Signature": "AAAA"})
        assert forged.status_code == 403
    await until(lambda: len(calls) == 3)
    events = [env["event"] for _, env in calls]
    assert [e["status"] for e in events] == ["ringing", "ringing", "completed"]
    assert events[2]["duration_s"] == 42
    assert events[0]["direction"] == "outbound"
    assert events[0]["to_number"] == "+15550100003"
    assert calls[0][1]["event_id"] == calls[1][1]["event_id"], "a retry has the same event id"
    assert {key for key, _ in calls} == {"CA-status"}


async def test_machine_detection_decisions_become_call_answered_by_events(
    running: Running,
) -> None:
    calls = running.published[CALLS.name]
    placement_id = await running.gateway.placements.remember(Placement(agent_id="reminders"))
    url = f"{running.http_url}/twilio/machine-detection?placement={placement_id}"
    form = {
        "AccountSid": "AC1",
        "CallSid": "CA-amd",
        "AnsweredBy": "machine_end_beep",
        "MachineDetectionDuration": "4210",
    }
    newer_twilio = {**form, "CallSid": "CA-amd-2", "AnsweredBy": "machine_end_robot"}
    async with httpx.AsyncClient() as client:
        assert (await post_signed(client, url, form)).status_code == 204
        assert (await post_signed(client, url, form)).status_code == 204  # Twilio retried
        assert (await post_signed(client, url, newer_twilio)).status_code == 204
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": "AAAA"})
        assert forged.status_code == 403
        elsewhere = f"{running.http_url}/twilio/machine-detection"
        for not_ours in (f"{elsewhere}?placement={uuid.uuid4().hex}", elsewhere):
            refused = await post_signed(client, not_ours, form)
            assert (refused.status_code, refused.json()) == (404, {"detail": "unknown placement"})
        no_call = {k: v for k, v in form.items() if k != "CallSid"}
        assert (await post_signed(client, url, no_call)).status_code == 400
    await until(lambda: len(calls) == 3)
    assert [key for key, _ in calls] == ["CA-amd", "CA-amd", "CA-amd-2"]
    events = [env["event"] for _, env in calls]
    assert events[0] == {
        "type": "call.answered_by",
        "answered_by": "machine_end_beep",
        "detection_ms": 4210,
    }
    assert events[2]["answered_by"] == "unknown"
    ids = [env["event_id"] for _, env in calls]
    assert ids[0] == ids[1], "a retry has the same event id"
    assert ids[2] != ids[0]


async def test_a_second_stream_for_a_live_call_is_refused(running: Running) -> None:
    call_sid = f"CA{uuid.uuid4().hex}"
    first = await open_call(running, call_sid)
    parameters = await answer_call(running, call_sid)
    async with connect(f"ws://{running.base_url}/twilio/media") as second:
        await second.send(TWILIO_CONNECTED)
        await second.send(twilio_start(call_sid, parameters))
        with pytest.raises(ConnectionClosed) as closed:
            await second.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.reason == "call is already streaming"
    await first.close()


def test_secrets_are_not_shown_in_settings() -> None:
    settings = GatewaySettings(twilio_auth_token=SecretStr(AUTH_TOKEN))
    assert AUTH_TOKEN not in repr(settings)
    assert AUTH_TOKEN not in json.dumps(settings.model_dump(mode="json"))
