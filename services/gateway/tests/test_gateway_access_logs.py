"""Secrets never in the logs: everything the gateway process logs (ours, uvicorn's request and
WebSocket lines with their query strings, httpx's) while keys and tokens are used, right and
wrong, holds neither a key nor a token."""

from __future__ import annotations

import logging

import httpx
import pytest
from websockets.asyncio.client import connect

from voicebus_devstack.web_caller import WebCaller
from voicebus_gateway.auth.logs import REDACTED, scrub
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.settings import GatewaySettings

from .conftest import AUTH_TOKEN, Keys, Running, bearer, gateway_settings


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    return gateway_settings(analytics_url, auth="required")


async def test_keys_and_tokens_never_reach_the_logs(
    running: Running, api_keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = await api_keys.key(Scope.ADMIN)
    revoked = await api_keys.key(Scope.ADMIN)
    await api_keys.store.revoke(revoked.split("_")[1])
    async with httpx.AsyncClient(base_url=running.http_url, timeout=5) as client:
        assert (await client.get("/api/calls", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/calls", headers=bearer(revoked))).status_code == 401
        # A careless client puts its key in the URL: refused, and not logged either.
        assert (await client.get(f"/api/calls?key={key}&limit=2")).status_code == 401
        assert (await client.get("/api/calls.csv", params={"agent_id": key})).status_code == 401
        granted = await client.post("/api/web-calls", json={}, headers=bearer(key))
        used = await client.post("/api/web-calls", json={}, headers=bearer(key))
    token, used_token = granted.json()["token"], used.json()["token"]
    async with WebCaller(f"ws://{running.base_url}/web/call", token=used_token):
        pass
    async with connect(f"ws://{running.base_url}/web/call?token={used_token}") as refused:
        await refused.wait_closed()  # used already: refused, and said why in the log
    async with WebCaller(f"ws://{running.base_url}/web/call", token=token):
        pass

    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for secret in (key, revoked, token, used_token, AUTH_TOKEN):
        assert secret not in logged
    assert key.split("_", 2)[2] not in logged  # nor a key's secret part alone
    # uvicorn did log the requests, their query strings scrubbed.
    assert f"/web/call?token={REDACTED}" in logged
    assert f"/api/calls?key={REDACTED}&limit=2" in logged


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        (
            "key vb_0123456789abcdef_" + "s3cr3t-_" * 5 + " refused",
            f"key vb_0123456789abcdef_{REDACTED} refused",
        ),
        ("token vbw_" + "a" * 43, f"token vbw_{REDACTED}"),
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {REDACTED}"),
        (
            '"WebSocket /web/call?agent_id=x&token=abc" [accepted]',
            f'"WebSocket /web/call?agent_id=x&token={REDACTED}" [accepted]',
        ),
        ("GET /api/calls?api_key=abc#top", f"GET /api/calls?api_key={REDACTED}#top"),
        ("GET /api/calls?monkey=1&tokens=2", "GET /api/calls?monkey=1&tokens=2"),
    ],
)
def test_what_is_scrubbed(line: str, scrubbed: str) -> None:
    assert scrub(line) == scrubbed
