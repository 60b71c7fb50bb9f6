"""An event loop in a thread of its own, for what a fixture keeps running across tests (each
test has an event loop of its own) or beside code without one: a fake provider, a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")
A = TypeVar("A", bound=contextlib.AbstractAsyncContextManager[Any])


class LoopThread:
    """An event loop running in a daemon thread while entered; `run` runs a coroutine there
    from any other thread and returns its result."""

    def __init__(self, name: str = "loop-thread") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @contextlib.contextmanager
    def entered(self, manager: A) -> Iterator[A]:
        """`manager` entered on this loop for the block: a fake served, a proxy listening."""
        self.run(manager.__aenter__())
        try:
            yield manager
        finally:
            self.run(manager.__aexit__(None, None, None))


@contextlib.contextmanager
def in_thread(manager: A) -> Iterator[A]:
    """`manager` (a fake provider, say) entered on an event loop of its own in a thread: for a
    fixture that outlives a test's event loop, or for code without one."""
    with LoopThread(name=type(manager).__name__) as thread, thread.entered(manager):
        yield manager
