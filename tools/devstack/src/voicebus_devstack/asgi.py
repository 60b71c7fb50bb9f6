"""Serving a test's own ASGI app (a fake provider, a webhook receiver) on a free local port."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn in this event loop on 127.0.0.1 and a free port; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve(), name=f"uvicorn-{uuid.uuid4().hex[:8]}")
    while not server.started:
        if serving.done():
            raise RuntimeError("uvicorn did not start") from serving.exception()
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
