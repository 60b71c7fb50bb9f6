import asyncio
import uuid

from voicebus_agent.keypad import MAX_ENTRY_KEYS, Keypad, KeypadEntry

FOREVER = 3600.0
"""A typing pause no test waits for: entries are submitted by `#` or `take`."""


async def nothing(call_id: str) -> None:
    raise AssertionError(f"no pause was expected ({call_id})")


def press_all(keypad: Keypad, call_id: str, keys: str) -> list[KeypadEntry]:
    entries = [keypad.press(call_id, key, event_id=uuid.uuid4()) for key in keys]
    return [e for e in entries if e is not None]


async def test_hash_submits_the_keys_typed_before_it() -> None:
    keypad = Keypad(pause_s=FOREVER, on_pause=nothing)
    assert press_all(keypad, "CA1", "12") == []
    ended_by = uuid.uuid4()
    entry = keypad.press("CA1", "#", event_id=ended_by)
    assert entry == KeypadEntry(keys="12", ended_by=ended_by)
    assert entry.text == "pressed 1 2"
    assert entry.turn_id("CA1") == f"CA1:dtmf-{ended_by.hex}"
    assert keypad.take("CA1") is None  # the entry was submitted: a fresh one begins


async def test_hash_with_nothing_typed_submits_nothing() -> None:
    keypad = Keypad(pause_s=FOREVER, on_pause=nothing)
    assert press_all(keypad, "CA1", "#") == []


async def test_a_redelivered_key_press_counts_once() -> None:
    keypad = Keypad(pause_s=FOREVER, on_pause=nothing)
    press = uuid.uuid4()
    keypad.press("CA1", "7", event_id=press)
    keypad.press("CA1", "7", event_id=press)
    entry = keypad.take("CA1")
    assert entry == KeypadEntry(keys="7", ended_by=press)


async def test_calls_type_apart_and_an_ended_call_forgets_its_keys() -> None:
    keypad = Keypad(pause_s=FOREVER, on_pause=nothing)
    press_all(keypad, "CA1", "12")
    press_all(keypad, "CA2", "9")
    keypad.forget("CA1")
    assert keypad.take("CA1") is None
    assert [e.keys for e in press_all(keypad, "CA2", "*#")] == ["9*"]


async def test_a_stuck_key_submits_the_longest_entry() -> None:
    keypad = Keypad(pause_s=FOREVER, on_pause=nothing)
    assert [e.keys for e in press_all(keypad, "CA1", "5" * (MAX_ENTRY_KEYS + 1))] == [
        "5" * MAX_ENTRY_KEYS
    ]
    keypad.close()


async def test_a_pause_in_the_typing_submits_the_entry() -> None:
    submitted: asyncio.Queue[KeypadEntry | None] = asyncio.Queue()

    async def on_pause(call_id: str) -> None:
        await submitted.put(keypad.take(call_id))

    keypad = Keypad(pause_s=0.01, on_pause=on_pause)
    last = uuid.uuid4()
    keypad.press("CA1", "4", event_id=uuid.uuid4())
    keypad.press("CA1", "2", event_id=last)
    entry = await asyncio.wait_for(submitted.get(), timeout=10)
    assert entry == KeypadEntry(keys="42", ended_by=last)
