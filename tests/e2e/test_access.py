"""The product with keys required (VOICEBUS_AUTH=required) on a stack of its own: a key made with
`python -m voicebus_gateway keys create` against the stack's Redis opens the API, a web call
with a token got with it reaches the agent, the key is refused once revoked, and neither the
key nor the token is ever in the stack's logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from voicebus_devstack.harness import RunningStack
from voicebus_devstack.web_caller import WebCaller

from .conftest import running_stack, stopped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CLI_TIMEOUT_S = 60.0
"""Guards against a hung command only."""


@pytest.fixture(scope="module")
def guarded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = running_stack(tmp_path_factory.mktemp("stack-access"), {"VOICEBUS_AUTH": "required"})
    yield stack
    stopped(stack)


def keys(stack: RunningStack, *args: str) -> str:
    """`python -m voicebus_gateway keys ...` against the stack's Redis; what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "voicebus_gateway", "keys", *args],
        env={**os.environ, "VOICEBUS_REDIS_URL": stack.redis_url},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=True,
    )
    return done.stdout


async def test_a_key_from_the_command_line_opens_the_api_and_web_calls_until_revoked(
    guarded_stack: RunningStack,
) -> None:
    key = keys(
        guarded_stack, "create", "--name", "e2e", "--scope", "agents:read", "--scope", "calls:write"
    ).strip()
    authorized = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=guarded_stack.base_url, timeout=30) as api:
        assert (await api.get("/api/agents")).status_code == 401
        listed = await api.get("/api/agents", headers=authorized)
        assert listed.status_code == 200, listed.text
        assert (await api.get("/api/calls", headers=authorized)).status_code == 403  # no scope
        granted = await api.post("/api/web-calls", json={}, headers=authorized)
        assert granted.status_code == 201, granted.text
        token = granted.json()["token"]

        async with WebCaller(f"{guarded_stack.ws_url}/web/call", token=token) as caller:
            greeting = await caller.wait_for_agent_audio(after=0.0, quiet_s=1.0)
        assert greeting, "the agent's greeting reached the web caller"

        key_id = key.split("_")[1]  # vb_<id>_<secret>
        listed_keys = [json.loads(line) for line in keys(guarded_stack, "list").splitlines()]
        assert [k["id"] for k in listed_keys if k["revoked_at"] is None] == [key_id]
        keys(guarded_stack, "revoke", key_id)
        refused = await api.get("/api/agents", headers=authorized)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "the API key was revoked"}

    logged = guarded_stack.log_path.read_text(errors="replace")
    assert "/web/call?token=[redacted]" in logged  # the gateway logged the call, scrubbed
    assert key not in logged
    assert token not in logged
