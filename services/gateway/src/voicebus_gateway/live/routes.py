"""The live feed over HTTP: Server-Sent Events, which any HTTP client can read line by line.
Where the API needs a key, a browser reads them with fetch, the key in its Authorization header
(the dashboard does, `api.js`): `EventSource` cannot send one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from voicebus_gateway.auth.access import requires
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.live.feed import FEED_STARTED, LiveFeed, Watcher

KEEPALIVE_S = 15.0
"""A comment line this often on a quiet feed: proxies keep the connection open, and a browser
that is gone is noticed (its socket refuses the write)."""
RECONNECT_MS = 2_000
"""How long a browser waits before following a feed again after losing it."""
STREAM_HEADERS = {
    "cache-control": "no-cache",
    # nginx, and proxies like it, would otherwise buffer the stream.
    "x-accel-buffering": "no",
}


def live_routes(feed: LiveFeed) -> APIRouter:
    """`GET /api/events` (the list of calls) and `GET /api/calls/{call_id}/events` (one call),
    as event streams of `feed`."""
    router = APIRouter(tags=["live"])

    @router.get(
        "/api/events",
        response_class=StreamingResponse,
        dependencies=[requires(Scope.CALLS_READ)],
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def call_list_events() -> StreamingResponse:
        """Each call's start, its carrier status changes and its end, as they happen."""
        return _event_stream(feed.watch_list())

    @router.get(
        "/api/calls/{call_id}/events",
        response_class=StreamingResponse,
        dependencies=[requires(Scope.CALLS_READ)],
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def call_events(call_id: str) -> StreamingResponse:
        """What is said and done in call `call_id` as it happens: speech, partial and final
        transcripts, the agent's reply, tools, the workflow, each reply's latency, the end."""
        return _event_stream(feed.watch_call(call_id))

    return router


def _event_stream(watching: AbstractContextManager[Watcher]) -> StreamingResponse:
    return StreamingResponse(
        _events(watching), media_type="text/event-stream", headers=STREAM_HEADERS
    )


async def _events(watching: AbstractContextManager[Watcher]) -> AsyncIterator[str]:
    """The feed as Server-Sent Events: `feed.started` once watching, then each update, until
    the feed closes or the client goes (the response's task is then cancelled)."""
    with watching as watcher:
        yield f"retry: {RECONNECT_MS}\ndata: {FEED_STARTED}\n\n"
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    update = await watcher.next()
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if update is None:
                return
            yield f"data: {update}\n\n"
