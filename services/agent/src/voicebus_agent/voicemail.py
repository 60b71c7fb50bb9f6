"""Answering machines on outbound calls: the greeting of an agent that listens for them waits
for the carrier's decision (`CallAnsweredBy`), then the agent greets a person, leaves its
message on a machine, or hangs up. A decision that never comes does not leave a person in
silence: the agent greets when its wait is over."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from voicebus_agent.timers import CallTimers
from voicebus_contracts import AnsweredBy, StageStamps

log = logging.getLogger(__name__)

Verdict = Literal["greet", "leave_message", "hang_up"]
DECISIONS_REMEMBERED = 1_000
"""Decisions that came before their call's start, kept until it does (the oldest go first)."""


def verdict(answered_by: AnsweredBy, *, has_message: bool) -> Verdict:
    """What the agent does, given who answered: a person (or nobody could tell) is greeted;
    a machine gets the message, if the agent has one; a fax is hung up on."""
    if answered_by in ("human", "unknown"):
        return "greet"
    if answered_by == "fax" or not has_message:
        return "hang_up"
    return "leave_message"


@dataclass(frozen=True)
class HeldGreeting:
    """A call's greeting, waiting for who answered: its agent and what started the call."""

    agent_id: str
    cause: UUID
    stamps: StageStamps


class AnsweringMachines:
    """The calls whose greeting waits for the carrier's decision, in this worker's memory."""

    def __init__(self, *, on_timeout: Callable[[str], Awaitable[None]]) -> None:
        self._held: dict[str, HeldGreeting] = {}
        self._early: dict[str, AnsweredBy] = {}
        self._timers = CallTimers(on_timeout, waiting_for="answering-machine decision")

    def hold(self, call_id: str, greeting: HeldGreeting, *, wait_s: float) -> AnsweredBy | None:
        """Hold the greeting until the decision, or for `wait_s`; a decision that came before
        the call started is returned instead (nothing is held)."""
        if (early := self._early.pop(call_id, None)) is not None:
            return early
        self._held[call_id] = greeting
        self._timers.start(call_id, wait_s)
        return None

    def waiting(self, call_id: str) -> bool:
        return call_id in self._held

    def decided(self, call_id: str, answered_by: AnsweredBy) -> HeldGreeting | None:
        """The greeting the decision releases; None when none waits (the decision is then
        remembered, for a call whose start has not come yet, until the call ends)."""
        held = self.take(call_id)
        if held is None:
            self._early[call_id] = answered_by
            if len(self._early) > DECISIONS_REMEMBERED:
                del self._early[next(iter(self._early))]
        return held

    def take(self, call_id: str) -> HeldGreeting | None:
        self._timers.stop(call_id)
        return self._held.pop(call_id, None)

    def call_ended(self, call_id: str) -> None:
        self.take(call_id)
        self._early.pop(call_id, None)

    def close(self) -> None:
        self._timers.close()
