"""Smart endpointing: which transcripts read as finished, and held turns' timers."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from voicebus_agent.endpointing import HeldTurn, HeldTurns, sounds_finished
from voicebus_contracts import StageStamps


@pytest.mark.parametrize(
    "text",
    [
        "Please book a table for two.",
        "Yes",
        "What are your opening hours?",
        "I need it tomorrow",
        "",
        "   ",
    ],
)
def test_finished_turns(text: str) -> None:
    assert sounds_finished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I would like to",
        "So I want to...",
        "and",
        "My number is, um",
        "Book a table for",
        "The reservation is for the",
        "Well,",
        "I was thinking…",
    ],
)
def test_turns_that_trail_off(text: str) -> None:
    assert not sounds_finished(text)


def held(text: str) -> HeldTurn:
    return HeldTurn(turn_id="CA1:t1", text=text, cause=uuid.uuid4(), stamps=StageStamps())


async def test_a_held_turn_is_handed_back_when_the_caller_stays_quiet() -> None:
    quiet: list[HeldTurn | None] = []
    turns: HeldTurns

    async def on_quiet(call_id: str) -> None:
        quiet.append(turns.take(call_id))

    turns = HeldTurns(wait_s=0.01, on_quiet=on_quiet)
    turns.hold("CA1", held("I would like to"))
    await asyncio.sleep(0.1)
    assert [t.text if t else None for t in quiet] == ["I would like to"]
    assert turns.take("CA1") is None


@pytest.mark.parametrize("started_first", [True, False])
async def test_a_later_turn_started_holds_the_turn_until_its_transcript(
    started_first: bool,
) -> None:
    quiet: list[str] = []

    async def on_quiet(call_id: str) -> None:
        quiet.append(call_id)

    turns = HeldTurns(wait_s=0.01, on_quiet=on_quiet, max_hold_s=5.0)
    # When STT lags by more than the caller's pause, the next turn started (and ended) before
    # the held turn's transcript came: the hold does not depend on the caller still speaking.
    if started_first:
        turns.speech_started("CA1", "CA1:t2")
    turns.hold("CA1", held("I would like to"))
    if not started_first:
        turns.speech_started("CA1", "CA1:t2")
    await asyncio.sleep(0.1)
    assert quiet == []
    taken = turns.take("CA1")
    assert taken is not None
    assert taken.text == "I would like to"
    turns.hold("CA2", held("and"))
    turns.close()
    await asyncio.sleep(0.05)
    assert quiet == []


async def test_once_every_started_turn_is_heard_a_held_turn_waits_for_quiet_only() -> None:
    quiet: list[str] = []

    async def on_quiet(call_id: str) -> None:
        quiet.append(call_id)

    turns = HeldTurns(wait_s=0.01, on_quiet=on_quiet, max_hold_s=5.0)
    turns.speech_started("CA1", "CA1:t1")
    turns.speech_started("CA1", "CA1:t2")
    turns.heard("CA1", "CA1:t1")
    turns.heard("CA1", "CA1:t2")
    turns.hold("CA1", held("so I want to"))
    await asyncio.sleep(0.1)
    assert quiet == ["CA1"]


async def test_the_held_turns_own_start_coming_late_does_not_hold_it_longer() -> None:
    quiet: list[str] = []

    async def on_quiet(call_id: str) -> None:
        quiet.append(call_id)

    turns = HeldTurns(wait_s=0.01, on_quiet=on_quiet, max_hold_s=5.0)
    turns.hold("CA1", held("and"))  # turn CA1:t1
    turns.speech_started("CA1", "CA1:t1")
    await asyncio.sleep(0.1)
    assert quiet == ["CA1"]


async def test_no_turn_is_held_past_the_limit() -> None:
    quiet: list[str] = []

    async def on_quiet(call_id: str) -> None:
        quiet.append(call_id)

    turns = HeldTurns(wait_s=5.0, on_quiet=on_quiet, max_hold_s=0.01)
    turns.speech_started("CA1", "CA1:t2")
    turns.hold("CA1", held("and"))
    await asyncio.sleep(0.1)
    assert quiet == ["CA1"]
