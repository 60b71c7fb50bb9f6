"""The API with keys required (VOICEBUS_AUTH=required): every /api route declares its scope and
refuses without it (401 without a valid key, 403 without the scope), the live feeds too; what
stays open stays open; CORS for the listed origins only."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from starlette.routing import Mount

from voicebus_gateway.auth.access import declared_scopes
from voicebus_gateway.auth.keys import id_of
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.settings import GatewaySettings

from .conftest import Keys, Running, bearer, gateway_settings, post_signed, voice_form

CRM = "https://crm.example.com"
R, W = Scope.CALLS_READ, Scope.CALLS_WRITE
AR, AW = Scope.AGENTS_READ, Scope.AGENTS_WRITE
SCOPES: dict[tuple[str, str], Scope] = {
    ("GET", "/api/calls"): R,
    ("GET", "/api/calls.csv"): R,
    ("GET", "/api/calls/{call_id}"): R,
    ("GET", "/api/calls/{call_id}/recording"): R,
    ("GET", "/api/calls/{call_id}/events"): R,
    ("GET", "/api/events"): R,
    ("GET", "/api/analytics/summary"): R,
    ("GET", "/api/campaigns/{campaign_id}"): R,
    ("POST", "/api/calls"): W,
    ("POST", "/api/calls/{call_id}/hangup"): W,
    ("POST", "/api/calls/{call_id}/transfer"): W,
    ("POST", "/api/calls/{call_id}/dtmf"): W,
    ("POST", "/api/campaigns"): W,
    ("POST", "/api/campaigns/{campaign_id}/cancel"): W,
    ("POST", "/api/web-calls"): W,
    ("GET", "/api/agents"): AR,
    ("GET", "/api/agents/{agent_id}"): AR,
    ("GET", "/api/knowledge-bases/{kb_id}/documents"): AR,
    ("POST", "/api/knowledge-bases/{kb_id}/search"): AR,
    ("POST", "/api/agents"): AW,
    ("PUT", "/api/agents/{agent_id}"): AW,
    ("DELETE", "/api/agents/{agent_id}"): AW,
    ("POST", "/api/knowledge-bases/{kb_id}/documents"): AW,
    ("DELETE", "/api/knowledge-bases/{kb_id}/documents/{name}"): AW,
}
"""Each /api operation and the scope it needs: docs/security.md has this table."""
OPEN = {
    "/healthz",
    "/metrics",
    "/",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/twilio/voice",
    "/twilio/status",
    "/twilio/machine-detection",
}
"""What needs no key: health and metrics, the dashboard's page and the API's description, and
Twilio's webhooks (which check Twilio's signature instead)."""
SOCKETS = {"/twilio/media", "/web/call"}
"""Checked their own way: Twilio's stream token, the web call token."""


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    return gateway_settings(analytics_url, auth="required", cors_origins=(CRM,))


def operations(app: FastAPI) -> dict[tuple[str, str], list[str]]:
    """Each /api operation of `app` and the scopes it declares."""
    return {
        (method, route.path or ""): declared_scopes(route)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and (route.path or "").startswith("/api")
        for method in route.methods or ()
    }


def concrete(path: str) -> str:
    """`path` with each parameter filled in."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_api_route_declares_the_scope_it_needs(app: FastAPI) -> None:
    declared = operations(app)
    undeclared = sorted(op for op, scopes in declared.items() if len(scopes) != 1)
    assert undeclared == [], "each /api operation declares exactly one scope"
    assert {op: scopes[0] for op, scopes in declared.items()} == SCOPES


def test_every_other_route_is_known_to_be_open(app: FastAPI) -> None:
    others: set[str] = set()
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if isinstance(route.original_route, APIWebSocketRoute):
            assert path in SOCKETS, path
        elif isinstance(route.original_route, Mount):
            assert path == "/dashboard", path  # the dashboard's files
        elif not path.startswith("/api"):
            others.add(path)
    assert others == OPEN, "a route outside /api: open, or under /api with a scope?"


@pytest.mark.parametrize(("method", "path"), sorted(SCOPES))
async def test_without_a_key_every_api_route_is_refused(
    running: Running, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        refused = await client.request(method, concrete(path))
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in refused.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(SCOPES))
async def test_a_key_without_the_scope_is_forbidden(
    running: Running, api_keys: Keys, method: str, path: str
) -> None:
    needed = SCOPES[method, path]
    key = await api_keys.key(*(set(Scope) - {needed, Scope.ADMIN}))
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        refused = await client.request(method, concrete(path), headers=bearer(key))
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == f"API key {id_of(key)} lacks the scope {needed}"


async def test_a_key_with_the_scope_is_let_through(running: Running, api_keys: Keys) -> None:
    reader, admin = await api_keys.key(Scope.CALLS_READ), await api_keys.key(Scope.ADMIN)
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        for key in (reader, admin):
            listed = await client.get("/api/calls", params={"limit": 3}, headers=bearer(key))
            assert listed.status_code == 200, listed.text
            assert listed.json() == [{"call_id": "CA1", "limit": 3}]
        # Through the gate, to an agent service that is not there.
        agents = await client.get("/api/agents", headers=bearer(admin))
    assert agents.status_code == 503, agents.text
    assert "the agent service unreachable" in agents.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer vb_0123456789abcdef_" + "A" * 43,  # shaped like a key, unknown
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
async def test_anything_but_a_valid_key_is_unauthenticated(
    running: Running, authorization: str
) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        refused = await client.get("/api/calls", headers={"Authorization": authorization})
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_a_revoked_key_is_refused_at_once(running: Running, api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_READ)
    async with httpx.AsyncClient(base_url=running.http_url, headers=bearer(key)) as client:
        assert (await client.get("/api/calls")).status_code == 200
        key_id = id_of(key)
        assert key_id is not None
        await api_keys.store.revoke(key_id)
        refused = await client.get("/api/calls")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert refused.json() == {"detail": "the API key was revoked"}


async def test_the_live_feed_needs_a_key_in_the_header(running: Running, api_keys: Keys) -> None:
    key = await api_keys.key(Scope.CALLS_READ)
    async with httpx.AsyncClient(base_url=running.http_url, timeout=5) as client:
        refused = await client.get("/api/events", params={"token": key})  # not in the URL
        assert refused.status_code == 401
        async with client.stream("GET", "/api/events", headers=bearer(key)) as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
            first = await anext(feed.aiter_text())
    assert "feed.started" in first


async def test_health_metrics_the_dashboard_and_twilio_need_no_key(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        assert (await client.get("/healthz")).status_code in (200, 503)
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/dashboard/app.js")).status_code == 200
        url = f"{running.http_url}/twilio/voice"
        answered = await post_signed(client, url, voice_form("CA-open"))
    assert answered.status_code == 200, answered.text


async def test_the_listed_origin_may_call_the_api_from_a_browser(
    running: Running, api_keys: Keys
) -> None:
    key = await api_keys.key(Scope.CALLS_READ)
    asking = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        allowed = await client.options("/api/calls", headers={"Origin": CRM, **asking})
        other = await client.options(
            "/api/calls", headers={"Origin": "https://evil.example", **asking}
        )
        read = await client.get("/api/calls", headers={"Origin": CRM, **bearer(key)})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CRM
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers  # keys, not cookies
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert read.headers["access-control-allow-origin"] == CRM
