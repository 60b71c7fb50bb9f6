"""A realtime agent on the whole stack: a Twilio caller talks to a speech-to-speech model (a
local server speaking the OpenAI Realtime protocol, driving the agent service's real client),
hears its voice, and the call is on record as a cascaded call would be: the caller's words,
the model's, and the reply's latency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from voicebus_devstack.fake_openai_realtime import FakeOpenAIRealtime
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.loop_thread import LoopThread
from voicebus_devstack.polling import until
from voicebus_devstack.speech import telephone_speech

from .conftest import record_of, replies_timed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

GREETING = "Harbor Light, how can I help?"
ANSWER = "Sure, a kayak for two at nine."
PROPAGATION_S = 3.0
"""Every service learns a new agent from the bus within its background fetch wait."""
WAIT_S = 60.0
"""Guards against a hung test only."""


async def realtime_agent(stack: RunningStack, name: str, **settings: Any) -> str:
    """Create a realtime agent `name`-<run> with `settings` through the API, once every service
    knows it; returns the number that reaches it."""
    run = uuid.uuid4().hex[:6]
    number = f"+1555{int(run, 16) % 10_000_000:07d}"
    agent = {
        "agent_id": f"{name}-{run}",
        "name": name,
        "phone_numbers": [number],
        "pipeline": "realtime",
        **settings,
    }
    async with httpx.AsyncClient(base_url=stack.base_url) as api:
        created = await api.post("/api/agents", json=agent)
        assert created.status_code == 201, created.text
    await asyncio.sleep(PROPAGATION_S)
    return number


async def test_a_caller_talks_to_a_realtime_agent_and_the_call_is_on_record(
    stack: RunningStack, realtime_model: tuple[LoopThread, FakeOpenAIRealtime]
) -> None:
    loop, fake = realtime_model
    number = await realtime_agent(stack, "realtime", greeting=GREETING, realtime={"voice": "marin"})

    fake.answer(GREETING)
    fake.answer(ANSWER)
    phone = await stack.phone_call(to_number=number)
    async with phone as caller:
        greeting = await caller.wait_for_agent_audio(after=0.0, quiet_s=1.0, timeout_s=WAIT_S)
        session = await fake.session(len(fake.sessions) - 1, timeout_s=WAIT_S)
        said = telephone_speech("I would like a kayak for two tomorrow at nine.")
        finished = await caller.say(said)
        # The model's turn detection is the test's to play: it hears the caller stop now.
        loop.run(session.caller_speaks("I would like a kayak for two tomorrow at nine."))
        answer = await caller.wait_for_agent_audio(after=finished, quiet_s=1.0, timeout_s=WAIT_S)

    assert session.config["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    # The caller's audio reached the model as it was sent: mu-law, untranscoded.
    assert said[:8000] in bytes(session.audio_received)
    # What the caller heard is the model's voice, as it gave it.
    assert len(greeting) >= 8 * session.responses[0].audio_ms * 0.9
    assert len(answer) >= 8 * session.responses[1].audio_ms * 0.9

    record = await record_of(
        stack.base_url,
        phone.call_sid,
        lambda r: r["status"] == "completed" and replies_timed(r) == 1,
    )
    turns = [(t["role"], t["text"]) for t in record["turns"]]
    assert turns == [
        ("agent", GREETING),
        ("user", "I would like a kayak for two tomorrow at nine."),
        ("agent", ANSWER),
    ]
    [timed] = [t for t in record["turns"] if t["in_reply_to"]]
    assert timed["latency"]["voice_to_voice_ms"] > 0


async def test_a_caller_who_speaks_over_the_model_cuts_its_memory_to_what_they_heard(
    stack: RunningStack, realtime_model: tuple[LoopThread, FakeOpenAIRealtime]
) -> None:
    loop, fake = realtime_model
    number = await realtime_agent(stack, "interrupted")

    long_greeting = "Welcome to Harbor Light. " * 8  # about twelve seconds of the model's voice
    fake.answer(long_greeting)
    phone = await stack.phone_call(to_number=number)
    async with phone as caller:
        await until(lambda: bool(caller.heard.frames), what="the greeting", timeout_s=WAIT_S)
        session = await fake.session(len(fake.sessions) - 1, timeout_s=WAIT_S)
        await asyncio.sleep(2.0)  # the caller hears two seconds of it, then speaks over it
        loop.run(session.caller_starts_speaking())
        await until(lambda: session.truncations != [], what="the truncation", timeout_s=WAIT_S)
        cleared = list(caller.heard.clears)

    [truncation] = session.truncations
    greeting = session.responses[0]
    assert truncation.item_id == greeting.item_id
    # Cut where the caller was, from the gateway's mark echoes: after the first words, well
    # before the end (the model had sent it all: it speaks faster than it is played).
    assert 1000 <= truncation.audio_end_ms < greeting.audio_ms - 5000
    assert cleared, "the gateway did not stop the model's audio at the caller's end"
