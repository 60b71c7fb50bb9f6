"""Serving a test's own ASGI app (a fake provider, a webhook receiver) on a free local port."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

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


class LocalFake(abc.ABC):
    """A fake provider served on a free local port while it is entered (`async with`); its
    address is then `base_url`. A fake gives its app, and what to end before it stops."""

    base_url: str
    _serving: contextlib.AsyncExitStack

    @abc.abstractmethod
    def _app(self) -> ASGIApp: ...

    def _url(self, served: str) -> str:
        """The base URL clients are given, from where the app is served."""
        return served

    async def _closing(self) -> None:  # noqa: B027 - a hook: most fakes have nothing to end
        """End what the fake runs beside its app (open sockets, background work)."""

    async def __aenter__(self) -> Self:
        self._serving = contextlib.AsyncExitStack()
        self.base_url = self._url(await self._serving.enter_async_context(serve_asgi(self._app())))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._closing()
        await self._serving.aclose()
