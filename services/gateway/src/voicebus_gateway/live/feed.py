"""The live feed: what happens in calls, passed on to the browsers watching them.

Every gateway replica reads what is said and done in every call (no consumer group), so any
replica can feed any browser. Nothing here waits for a browser: each watcher has a queue of its
own, bounded; one that falls behind loses its oldest updates, and is told how many, so it can
reload what it shows from the API.

With VOICEBUS_REDACT_PII, watchers see what was said redacted, as analytics records it: the
dashboard shows the same text live and after the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from voicebus_contracts import Envelope
from voicebus_gateway.live.updates import CallNews, concerns_call_list, update_of
from voicebus_runtime.redaction import redact_event

log = logging.getLogger(__name__)

WATCHER_QUEUE_LIMIT = 256
"""Updates held for one watcher at most: a few seconds of a busy call's partial transcripts and
reply pieces, far more than a browser that keeps reading ever has waiting."""


def feed_notice(kind: str, **fields: int) -> str:
    """A message about the feed itself (not about a call), as JSON."""
    return json.dumps({"type": f"feed.{kind}", **fields})


FEED_STARTED = feed_notice("started")
"""Every update from now on follows: the watcher loads what happened before from the API."""


class Watcher:
    """One browser's view of the feed: the updates it has not read yet, oldest first."""

    def __init__(self, *, limit: int = WATCHER_QUEUE_LIMIT) -> None:
        self._limit = limit
        self._queue: deque[str] = deque()
        self._dropped = 0
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, update: str) -> None:
        """Queue `update`; when the queue is full, the oldest update makes room."""
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            if not self._dropped:
                log.info("a live feed watcher fell behind: dropping its oldest updates")
            self._dropped += 1
        self._queue.append(update)
        self._ready.set()

    def close(self) -> None:
        """No more updates: `next` returns what is queued, then None."""
        self._closed = True
        self._ready.set()

    async def next(self) -> str | None:
        """The next update (JSON), waiting for one; None once closed and read to the end.

        Updates dropped since the last read are announced first (`feed.lagged`, with how many),
        before the newer ones that replaced them."""
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return feed_notice("lagged", dropped=dropped)
        return self._queue.popleft()


class LiveFeed:
    """This replica's watchers: of one call (everything said and done in it), or of the list
    of calls (each call's start, carrier status and end); with `redact_pii`, what was said is
    told redacted."""

    def __init__(self, *, queue_limit: int = WATCHER_QUEUE_LIMIT, redact_pii: bool = False) -> None:
        self._queue_limit = queue_limit
        self._redact_pii = redact_pii
        self._of_call: dict[str, set[Watcher]] = {}
        self._of_list: set[Watcher] = set()
        self._closed = False

    def _watcher(self) -> Watcher:
        watcher = Watcher(limit=self._queue_limit)
        if self._closed:
            watcher.close()
        return watcher

    @contextmanager
    def watch_call(self, call_id: str) -> Iterator[Watcher]:
        """A watcher of call `call_id`, for as long as the block runs."""
        watcher = self._watcher()
        self._of_call.setdefault(call_id, set()).add(watcher)
        try:
            yield watcher
        finally:
            watchers = self._of_call[call_id]
            watchers.discard(watcher)
            if not watchers:
                del self._of_call[call_id]

    @contextmanager
    def watch_list(self) -> Iterator[Watcher]:
        """A watcher of the list of calls, for as long as the block runs."""
        watcher = self._watcher()
        self._of_list.add(watcher)
        try:
            yield watcher
        finally:
            self._of_list.discard(watcher)

    def tell(self, env: Envelope[CallNews]) -> None:
        """Pass `env` on to whoever watches it; made into an update only if someone does."""
        of_call = self._of_call.get(env.call_id, set())
        of_list = self._of_list if concerns_call_list(env.event) else set()
        if not of_call and not of_list:
            return
        if self._redact_pii:
            env = env.model_copy(update={"event": redact_event(env.event)})
        update = update_of(env)
        if update is None:
            return
        for watcher in of_call | of_list:
            watcher.offer(update)

    def close(self) -> None:
        """End every watcher's feed, and those of watchers still to come (the gateway is
        stopping: an open feed would hold its graceful shutdown for the whole grace period)."""
        self._closed = True
        for watcher in (*self._of_list, *(w for ws in self._of_call.values() for w in ws)):
            watcher.close()
