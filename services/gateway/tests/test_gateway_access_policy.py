"""When keys are required (VOICEBUS_AUTH auto, required, off), `off` refused where others reach
the gateway, and the open gateway of `make run` (127.0.0.1, auto) as it stays: no key asked."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from voicebus_gateway.__main__ import main
from voicebus_gateway.auth.policy import is_loopback, keys_required
from voicebus_gateway.settings import GatewaySettings

from .conftest import Running


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "gateway", "example.com"])
def test_anything_else_may_be_reached_by_others(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("mode", "host", "public_url", "required"),
    [
        ("auto", "127.0.0.1", None, False),  # make run
        ("auto", "127.0.0.1", "http://127.0.0.1:8080", False),
        ("auto", "0.0.0.0", None, True),  # a container
        ("auto", "127.0.0.1", "https://voice.example.com", True),  # behind a tunnel or proxy
        ("required", "127.0.0.1", None, True),
        ("off", "127.0.0.1", None, False),
    ],
)
def test_when_keys_are_required(
    mode: str, host: str, public_url: str | None, required: bool
) -> None:
    settings = GatewaySettings(auth=mode, host=host, public_url=public_url)
    assert settings.keys_required is required
    assert keys_required(settings.auth, host=host, public_url=public_url) is required


@pytest.mark.parametrize(
    ("host", "public_url", "named"),
    [
        ("0.0.0.0", None, "listens on 0.0.0.0 (VOICEBUS_HOST)"),
        ("127.0.0.1", "https://x.ngrok.app", "published at https://x.ngrok.app"),
    ],
)
def test_auth_off_is_refused_where_others_reach_the_gateway(
    host: str, public_url: str | None, named: str
) -> None:
    with pytest.raises(ValidationError, match="VOICEBUS_AUTH=off") as refused:
        GatewaySettings(auth="off", host=host, public_url=public_url)
    assert named in str(refused.value)


def test_the_gateway_does_not_start_with_auth_off_on_a_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_AUTH", "off")
    monkeypatch.setenv("VOICEBUS_HOST", "0.0.0.0")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "a-twilio-auth-token-never-shown")
    with pytest.raises(SystemExit) as refused:
        main([])
    said = str(refused.value.code)
    assert said.startswith("voicebus-gateway refuses to start: ")
    assert "VOICEBUS_AUTH=off" in said
    assert "listens on 0.0.0.0" in said
    assert "a-twilio-auth-token-never-shown" not in said  # the settings' values are not echoed


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_AUTH", "required")
    monkeypatch.setenv("VOICEBUS_CORS_ORIGINS", "https://crm.example.com, HTTP://Localhost:3000")
    monkeypatch.setenv("VOICEBUS_RATE_LIMIT_PER_MINUTE", "120")
    monkeypatch.setenv("VOICEBUS_GATEWAY_WEB_CALL_TOKEN_TTL_S", "30")
    settings = GatewaySettings()
    assert settings.keys_required
    assert settings.cors_origins == ("https://crm.example.com", "http://localhost:3000")
    assert settings.rate_limit_per_minute == 120
    assert settings.web_call_token_ttl_s == 30


@pytest.mark.parametrize("origin", ["*", "crm.example.com", "https://crm.example.com/app"])
def test_an_origin_is_a_scheme_and_a_host(origin: str) -> None:
    with pytest.raises(ValidationError, match="an origin is scheme://host"):
        GatewaySettings(cors_origins=(origin,))


# --- the open default -------------------------------------------------------------------------


async def test_on_loopback_by_default_the_api_needs_no_key(running: Running) -> None:
    assert not running.gateway.access.keys_required
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        listed = await client.get("/api/calls")
        granted = await client.post("/api/web-calls", json={"agent_id": "sales"})
    assert listed.status_code == 200, listed.text
    assert granted.status_code == 201, granted.text
    assert granted.json()["agent_id"] == "sales"


async def test_without_listed_origins_other_pages_get_no_cors(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        preflight = await client.options(
            "/api/calls",
            headers={
                "Origin": "https://crm.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        read = await client.get("/api/calls", headers={"Origin": "https://crm.example.com"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in read.headers
