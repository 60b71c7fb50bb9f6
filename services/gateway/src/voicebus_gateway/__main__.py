"""`voicebus-gateway`: provision the bus topics, then serve the gateway with uvicorn; or, with
`keys ...`, make, list and revoke its API keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import signal
import socket
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from voicebus_contracts.topics import ALL_TOPICS, gateway_topic
from voicebus_gateway.app import Gateway, create_app
from voicebus_gateway.auth.cli import add_keys_command, run_keys_command
from voicebus_gateway.settings import GatewaySettings
from voicebus_runtime.bus import ensure_topics
from voicebus_runtime.observability import observe
from voicebus_runtime.settings import BusSettings

SOCKETS_CLOSE_S = 2.0
"""How long, once no call is live, the requests and sockets under way get to finish before
uvicorn cuts what is left."""
WS_MAX_MESSAGE_BYTES = 1024 * 1024
"""Far above any Twilio message; bounds what one socket can make us buffer."""


class GatewayServer(uvicorn.Server):
    """uvicorn, stopping the way a gateway should: first the live feeds end (an open event
    stream is a response that never completes, which would hold the shutdown for its whole
    grace), and the gateway takes no new call while its live ones end on their own, within the
    grace; only then does uvicorn close what is still open (its WebSockets at once)."""

    def __init__(self, config: uvicorn.Config, *, gateway: Gateway) -> None:
        super().__init__(config)
        self._gateway = gateway

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._gateway.live.close()
        await self._gateway.drain()
        # The calls that ended are still saying goodbye on their sockets: let them close
        # normally rather than be cut (uvicorn closes WebSockets with 1012 at once).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SOCKETS_CLOSE_S):
                while self.server_state.tasks:  # noqa: ASYNC110 - uvicorn has no event for it
                    await asyncio.sleep(0.01)
        await super().shutdown(sockets)


async def serve(settings: GatewaySettings, bus: BusSettings) -> None:
    """Create this replica's topics (and the shared ones) before consuming, then serve."""
    own_topic = gateway_topic(settings.resolved_gateway_id(bus))
    await ensure_topics(
        bus.kafka_bootstrap,
        (*ALL_TOPICS, own_topic),
        replication_factor=bus.kafka_replication_factor,
    )
    app = create_app(settings, bus)
    gateway: Gateway = app.state.gateway
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        # Compressing 20 ms audio frames costs CPU on the hottest path and saves nothing
        # (Twilio does not offer it; base64 mu-law barely compresses).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    await GatewayServer(config, gateway=gateway).serve()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m voicebus_gateway",
        description="Serve the gateway (no command), or manage its API keys (docs/security.md).",
    )
    add_keys_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    bus = BusSettings()
    if args.command == "keys":
        raise SystemExit(asyncio.run(run_keys_command(args, redis_url=bus.redis_url)))
    try:
        settings = GatewaySettings()
    except ValidationError as invalid:
        # Said without the values given: the environment holds secrets.
        problems = (
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in invalid.errors(include_url=False, include_input=False)
        )
        raise SystemExit(f"voicebus-gateway refuses to start: {'; '.join(problems)}") from None
    # `kill -USR1 <pid>` prints every thread's stack: what a replica that will not stop is doing.
    faulthandler.register(signal.SIGUSR1)
    observe("gateway", bus)
    asyncio.run(serve(settings, bus))


if __name__ == "__main__":
    main()
