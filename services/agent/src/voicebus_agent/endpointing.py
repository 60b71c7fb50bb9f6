"""Smart endpointing: a turn that trails off ("and...", "so I want to") is held, not answered.

Media ends a turn after a short silence, which keeps answers quick; but a caller who pauses
mid-sentence would be cut off. The transcript tells the two apart: a finished sentence is
answered at once, an unfinished one is held for the caller to go on. If they spoke again
(media told of a later turn's start whose transcript has not come), the hold lasts until that
transcript, which is joined to it; if they stay quiet for `wait_s`, the held turn is answered as
it is. No turn is held longer than `max_hold_s`, whatever is lost on the way.

Speech events and transcripts come on different topics from different services, so their order
tells nothing: when STT lags by more than the caller's pause, the continuation has started and
ended before the held turn's transcript arrives. What counts is whether a turn's speech started
whose transcript is still to come, not whether the caller is speaking at the moment.

Held turns live in this worker's memory with a timer per call, like typed keys: a worker that
restarts answers nothing held (the caller's next words are answered alone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from voicebus_agent.timers import CallTimers
from voicebus_agent.turns import words_of
from voicebus_contracts import StageStamps

TRAILING_WORDS = frozenset(
    {
        "and", "or", "but", "so", "because", "if", "then", "that", "which", "who", "when",
        "to", "for", "of", "with", "from", "at", "in", "on", "about", "into", "like",
        "the", "a", "an", "my", "your", "our", "their", "his", "her", "this", "these",
        "i", "we", "you", "is", "are", "was", "were", "be", "am", "want", "need", "would",
        "um", "uh", "er", "erm",
    }
)  # fmt: skip
"""Words a finished sentence does not end on: conjunctions, prepositions, articles, fillers."""
TRAILING_MARKS = ("...", "…", ",", "-", "—", ":")
MAX_HOLD_S = 10.0
"""No turn is held longer, even if the caller's next transcript never comes."""
MAX_UNHEARD_TURNS = 8
"""Turns remembered per call as started and not yet transcribed: a few at most in a real call;
the bound keeps a transcript that never comes from holding memory until the call ends."""


def sounds_finished(text: str) -> bool:
    """Whether a transcript reads as a finished turn (see TRAILING_WORDS and TRAILING_MARKS)."""
    stripped = text.strip()
    words = words_of(stripped)
    if not words:
        return True
    return not stripped.endswith(TRAILING_MARKS) and words[-1] not in TRAILING_WORDS


@dataclass(frozen=True)
class HeldTurn:
    """What the caller said so far in a turn that trails off."""

    turn_id: str
    text: str
    cause: UUID
    stamps: StageStamps


class HeldTurns:
    """Each call's unfinished turn, and its turns whose speech started and whose transcript has
    not come ("unheard"), in this worker's memory.

    `on_quiet(call_id)` is called when the caller stayed quiet for `wait_s` after a held turn
    (or `max_hold_s` passed); it is expected to `take` it.
    """

    def __init__(
        self,
        *,
        wait_s: float,
        on_quiet: Callable[[str], Awaitable[None]],
        max_hold_s: float = MAX_HOLD_S,
    ) -> None:
        self._wait_s = wait_s
        self._max_hold_s = max_hold_s
        self._timers = CallTimers(on_quiet, waiting_for="held turn")
        self._held: dict[str, HeldTurn] = {}
        self._unheard: dict[str, list[str]] = {}

    def hold(self, call_id: str, turn: HeldTurn, *, wait_s: float | None = None) -> None:
        """Hold `turn` for `wait_s` of quiet (by default, this worker's `wait_s`), or until the
        transcript of a turn the caller already started, which will join it."""
        self._held[call_id] = turn
        quiet_s = self._wait_s if wait_s is None else wait_s
        self._timers.start(call_id, self._max_hold_s if self._unheard.get(call_id) else quiet_s)

    def speech_started(self, call_id: str, turn_id: str) -> None:
        """The caller started turn `turn_id`: a held turn earlier than it waits for its
        transcript, which will join it."""
        held = self._held.get(call_id)
        if held is not None and held.turn_id == turn_id:
            return  # the held turn's own start, come after its transcript
        unheard = self._unheard.setdefault(call_id, [])
        unheard.append(turn_id)
        del unheard[:-MAX_UNHEARD_TURNS]
        if held is not None:
            self._timers.start(call_id, self._max_hold_s)

    def heard(self, call_id: str, turn_id: str) -> None:
        """Turn `turn_id`'s transcript came (whether it is held, joined, answered or not)."""
        unheard = self._unheard.get(call_id)
        if unheard is not None and turn_id in unheard:
            unheard.remove(turn_id)

    def take(self, call_id: str) -> HeldTurn | None:
        self._timers.stop(call_id)
        return self._held.pop(call_id, None)

    def call_ended(self, call_id: str) -> None:
        self.take(call_id)
        self._unheard.pop(call_id, None)

    def close(self) -> None:
        self._timers.close()
        self._held.clear()
        self._unheard.clear()
