"""Keys the caller presses, gathered into entries the agent answers like something said.

An entry is submitted by `#` (which is not part of it) or by a pause in the typing. The keys
typed so far live in this worker's memory, with a timer per call: a worker that restarts loses a
half-typed entry (the caller types it again), while a submitted one is a turn in the history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from voicebus_agent.timers import CallTimers

SUBMIT_KEY = "#"
MAX_ENTRY_KEYS = 64
"""An entry this long is submitted without waiting: a stuck key must not grow it forever."""


@dataclass(frozen=True)
class KeypadEntry:
    """Keys typed and submitted as one caller turn."""

    keys: str
    ended_by: UUID
    """The event id of the key press that submitted the entry (`#`) or of its last key: what the
    turn and its reply are derived from, so a redelivered press gives the same ids."""

    @property
    def text(self) -> str:
        """The entry as the caller's words: "pressed 1 2 3"."""
        return "pressed " + " ".join(self.keys)

    def turn_id(self, call_id: str) -> str:
        return f"{call_id}:dtmf-{self.ended_by.hex}"


@dataclass
class _Typing:
    keys: list[str]
    presses: list[UUID]


class Keypad:
    """Each call's keys typed since its last entry, in this worker's memory.

    `on_pause(call_id)` is called when the caller stopped typing for `pause_s` without `#`; it
    is expected to `take` the entry. Its timer is cancelled by the next key, `take` or `forget`,
    so the callback must take the entry only once it is sure to answer it (after any lock).
    """

    def __init__(self, *, pause_s: float, on_pause: Callable[[str], Awaitable[None]]) -> None:
        self._pause_s = pause_s
        self._timers = CallTimers(on_pause, waiting_for="keys typed")
        self._typing: dict[str, _Typing] = {}

    def press(self, call_id: str, key: str, *, event_id: UUID) -> KeypadEntry | None:
        """Add a key press; return the entry it submits, if any. A redelivered press is ignored."""
        typing = self._typing.setdefault(call_id, _Typing(keys=[], presses=[]))
        if event_id in typing.presses:
            return None
        typing.presses.append(event_id)
        if key == SUBMIT_KEY:
            return self._submit(call_id, ended_by=event_id)
        typing.keys.append(key)
        if len(typing.keys) >= MAX_ENTRY_KEYS:
            return self._submit(call_id, ended_by=event_id)
        self._timers.start(call_id, self._pause_s)
        return None

    def take(self, call_id: str) -> KeypadEntry | None:
        """Submit what the caller typed so far, if anything."""
        typing = self._typing.get(call_id)
        if typing is None or not typing.presses:
            return None
        return self._submit(call_id, ended_by=typing.presses[-1])

    def forget(self, call_id: str) -> None:
        """The call is over: drop what it typed."""
        self._typing.pop(call_id, None)
        self._timers.stop(call_id)

    def close(self) -> None:
        """Stop every timer (the worker is stopping)."""
        self._timers.close()
        self._typing.clear()

    def _submit(self, call_id: str, *, ended_by: UUID) -> KeypadEntry | None:
        typing = self._typing.pop(call_id)
        self._timers.stop(call_id)
        return KeypadEntry(keys="".join(typing.keys), ended_by=ended_by) if typing.keys else None
