"""Web calls with keys required: a token from `POST /api/web-calls` opens one call with its
agent, once, within its lifetime; anything else is refused with `unauthorized` and 1008. And
the page a browser opens a web call from must be the gateway's own or a listed origin."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from voicebus_contracts.topics import CALLS
from voicebus_devstack.polling import until
from voicebus_devstack.web_caller import WebCaller, WebCallRefusedError
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.auth.web_calls import WebCallTokenError, WebCallTokens
from voicebus_gateway.settings import GatewaySettings

from .conftest import Keys, Running, bearer, gateway_settings

CRM = "https://crm.example.com"
TOKEN_TTL_S = 0.5
RECEIVE_TIMEOUT_S = 5.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""
POLICY_VIOLATION = 1008


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    return gateway_settings(
        analytics_url,
        auth="required",
        cors_origins=(CRM,),
        web_call_token_ttl_s=TOKEN_TTL_S,
    )


async def grant(running: Running, key: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        return await client.post("/api/web-calls", json=body, headers=bearer(key))


async def token_for(running: Running, api_keys: Keys, agent_id: str | None = None) -> str:
    key = await api_keys.key(Scope.CALLS_WRITE)
    granted = await grant(running, key, **({} if agent_id is None else {"agent_id": agent_id}))
    assert granted.status_code == 201, granted.text
    token: str = granted.json()["token"]
    return token


def call_url(running: Running, **query: str) -> str:
    return f"ws://{running.base_url}/web/call?{urlencode(query)}"


async def refusal(socket: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error a refused web call is told, and the code its socket is closed with."""
    message = json.loads(await asyncio.wait_for(socket.recv(), RECEIVE_TIMEOUT_S))
    await asyncio.wait_for(socket.wait_closed(), RECEIVE_TIMEOUT_S)
    return message, socket.close_code


async def refused(url: str, **headers: str) -> dict[str, Any]:
    async with connect(url, additional_headers=headers) as socket:
        message, code = await refusal(socket)
    assert message["type"] == "error"
    assert message["code"] == "unauthorized"
    assert code == POLICY_VIOLATION
    return message


async def test_a_token_opens_a_web_call_with_its_agent(running: Running, api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_WRITE)
    granted = await grant(running, key, agent_id="sales")
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert body["agent_id"] == "sales"
    assert body["token"].startswith("vbw_")
    async with WebCaller(f"ws://{running.base_url}/web/call", token=body["token"]) as caller:
        assert caller.agent_id == "sales"
        calls = running.published[CALLS.name]
        await until(lambda: any(key == caller.call_id for key, _ in calls))


async def test_a_token_without_an_agent_is_for_the_default_one(
    running: Running, api_keys: Keys
) -> None:
    token = await token_for(running, api_keys)
    async with WebCaller(f"ws://{running.base_url}/web/call", token=token) as caller:
        assert caller.agent_id == running.gateway.settings.default_agent


async def test_a_token_is_used_once(running: Running, api_keys: Keys) -> None:
    token = await token_for(running, api_keys, "sales")
    async with WebCaller(f"ws://{running.base_url}/web/call", agent_id="sales", token=token):
        pass
    message = await refused(call_url(running, token=token))
    assert message["message"] == "web call token unknown, expired or used already"


async def test_a_token_is_for_its_agent_only(running: Running, api_keys: Keys) -> None:
    token = await token_for(running, api_keys, "sales")
    message = await refused(call_url(running, agent_id="support", token=token))
    assert message["message"] == "this web call token is for agent sales, not support"


async def test_without_a_valid_token_no_call_starts(running: Running, api_keys: Keys) -> None:
    token = await token_for(running, api_keys)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    await refused(call_url(running))
    await refused(call_url(running, token=tampered))
    await refused(call_url(running, token="vbw_short"))
    await refused(call_url(running, token=token + "x"))
    with pytest.raises(WebCallRefusedError, match="unauthorized"):
        async with WebCaller(f"ws://{running.base_url}/web/call"):
            pass
    assert not any(key.startswith("web-") for key, _ in running.published[CALLS.name])


async def test_an_expired_token_is_refused(running: Running, api_keys: Keys) -> None:
    token = await token_for(running, api_keys)
    await asyncio.sleep(TOKEN_TTL_S * 2)  # past its lifetime, however slow this machine
    message = await refused(call_url(running, token=token))
    assert "expired" in message["message"]


async def test_a_token_needs_a_key_allowed_to_make_calls(running: Running, api_keys: Keys) -> None:
    reader = await api_keys.key(Scope.CALLS_READ)
    assert (await grant(running, reader)).status_code == 403
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        assert (await client.post("/api/web-calls", json={})).status_code == 401


async def test_a_token_names_an_agent_the_way_a_call_does(running: Running, api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_WRITE)
    too_long = await grant(running, key, agent_id="a" * 129)
    unknown_field = await grant(running, key, agent="sales")
    assert (too_long.status_code, unknown_field.status_code) == (422, 422)


async def test_tokens_are_kept_by_digest_and_expire_in_redis(running: Running) -> None:
    tokens = WebCallTokens(running.gateway.redis, ttl_s=60)
    granted = await tokens.issue("sales")
    assert not [k async for k in running.gateway.redis.scan_iter(match=f"*{granted.token}*")]
    assert await tokens.redeem(granted.token, agent_id=None) == "sales"
    with pytest.raises(WebCallTokenError, match="used already"):
        await tokens.redeem(granted.token, agent_id=None)


# --- where the page that opens the call comes from ---------------------------------------------


async def test_a_page_of_another_origin_cannot_open_a_web_call(
    running: Running, api_keys: Keys
) -> None:
    token = await token_for(running, api_keys)
    message = await refused(call_url(running, token=token), Origin="https://evil.example")
    assert message["message"] == "pages of https://evil.example may not open web calls"


@pytest.mark.parametrize("origin", ["same", CRM])
async def test_the_gateways_own_pages_and_listed_origins_may(
    running: Running, api_keys: Keys, origin: str
) -> None:
    token = await token_for(running, api_keys)
    page = f"http://{running.base_url}" if origin == "same" else origin
    async with connect(call_url(running, token=token), additional_headers={"Origin": page}) as s:
        started = json.loads(await asyncio.wait_for(s.recv(), RECEIVE_TIMEOUT_S))
        assert started["type"] == "call.started", started
        await s.send(json.dumps({"type": "hangup"}))
