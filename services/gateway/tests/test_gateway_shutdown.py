"""A gateway told to stop (SIGTERM) takes no new call, says so on /healthz, and lets its live
calls end on their own within the shutdown grace before it goes."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.status import WS_1000_NORMAL_CLOSURE

from voicebus_devstack.polling import until
from voicebus_devstack.web_caller import WebCaller, WebCallRefusedError
from voicebus_gateway.__main__ import GatewayServer
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.metrics import BROKERS

from .conftest import gateway_settings

WAIT_S = 10.0
"""Guards against a hung test only."""


@pytest.fixture
def settings(analytics_url: str) -> GatewaySettings:
    # A grace no test outlives: the gateway stops only once its live call has ended.
    return gateway_settings(analytics_url, shutdown_grace_s=3600)


async def stopping_health(client: httpx.AsyncClient) -> httpx.Response:
    """/healthz once it says the replica is stopping."""
    for _ in range(int(WAIT_S / 0.05)):
        response = await client.get("/healthz")
        if response.json().get("stopping"):
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"/healthz never said stopping: {response.text}")


async def test_a_stopping_gateway_finishes_its_calls_and_takes_no_new_one(
    served: GatewayServer, settings: GatewaySettings, caplog: pytest.LogCaptureFixture
) -> None:
    base = f"127.0.0.1:{settings.port}"
    caplog.set_level(logging.INFO)
    async with WebCaller(f"ws://{base}/web/call") as live:
        served.should_exit = True  # as SIGTERM does
        async with httpx.AsyncClient(base_url=f"http://{base}") as client:
            health = await stopping_health(client)
        assert (health.status_code, health.json()) == (
            503,
            {"status": "unavailable", "stopping": True},
        )
        assert BROKERS.check() == "stopping"  # the metrics port's /healthz: not ready either

        with pytest.raises(WebCallRefusedError, match="unavailable"):
            async with WebCaller(f"ws://{base}/web/call"):
                pass
        assert not live.closed.is_set()  # the live call goes on
        assert "Shutting down" not in caplog.text

    # Hung up: the gateway goes at once, with nothing left to end.
    await until(lambda: "Shutting down" in caplog.text, what="uvicorn to stop", timeout_s=WAIT_S)
    assert "still live" not in caplog.text
    assert live.close_code == WS_1000_NORMAL_CLOSURE  # ended by the caller, not by the stop
