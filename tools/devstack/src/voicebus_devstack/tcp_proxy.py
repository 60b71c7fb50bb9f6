"""A TCP proxy whose link can be cut and restored, for fault tests: a database or a broker
"down" without stopping the real server (which other tests share)."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `upstream_host`:`upstream_port` while entered. `cut()`
    drops every connection and refuses new ones until `restore()`, as a network partition or
    a server gone down would look to the client."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._links: set[asyncio.StreamWriter] = set()
        """Both ends of every open link: closed to cut them."""
        self._up = True
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.close()
        await self._drop()
        await self._server.wait_closed()

    async def cut(self) -> None:
        self._up = False
        await self._drop()

    def restore(self) -> None:
        self._up = True

    async def _drop(self) -> None:
        for end in list(self._links):
            end.close()
        self._links.clear()
        await asyncio.sleep(0)  # let the pipes see their ends closed

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        ends = {writer, up_writer}
        self._links |= ends
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in ends:
                end.close()
            self._links -= ends


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
