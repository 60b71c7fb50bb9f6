"""The endpointing measure's rule simulation, on turns made up for the purpose."""

from __future__ import annotations

import pytest

from voicebus_bench.endpointing import HeardTurn, answered_at, outcome

PAUSED = [
    HeardTurn("I would like to", started_at=0.7, decided_at=2.0),
    HeardTurn("book a table.", started_at=2.4, decided_at=4.0),
]
"""A caller who paused mid-sentence: media cut it in two; the last word ends at 3.5 s."""


def test_vad_alone_answers_the_first_half_and_cuts_the_caller_off() -> None:
    assert answered_at(PAUSED, smart=False, wait_s=1.0) == 2.0
    assert outcome(PAUSED, 3.5, smart=False, wait_s=1.0).cut_off


def test_smart_endpointing_waits_for_the_rest() -> None:
    result = outcome(PAUSED, 3.5, smart=True, wait_s=1.0)
    assert not result.cut_off
    assert result.wait_s == pytest.approx(0.5)


def test_a_held_turn_is_answered_after_the_wait_when_the_caller_stays_quiet() -> None:
    trailing = [HeardTurn("So I want to", started_at=0.5, decided_at=2.0)]
    assert answered_at(trailing, smart=True, wait_s=1.0) == 3.0


def test_a_finished_sentence_is_answered_at_once_either_way() -> None:
    whole = [HeardTurn("What time do you open?", started_at=0.5, decided_at=2.5)]
    assert answered_at(whole, smart=True, wait_s=1.0) == answered_at(whole, smart=False, wait_s=1.0)
