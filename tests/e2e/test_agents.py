"""Agents configured through the API: an agent created at the gateway's /api/agents answers the
number it claims, with its own greeting and its own end-of-turn silence, in the running stack."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from voicebus_contracts import TELEPHONE
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import share_of_words, transcribe, wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MULAW_SILENCE = b"\xff"
PROPAGATION_S = 3.0
GREETING = "Thank you for calling the boat shop. What can I do for you?"


async def test_an_agent_created_through_the_api_answers_its_number_its_own_way(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    run = uuid.uuid4().hex[:6]
    number = f"+1555{int(run, 16) % 10_000_000:07d}"
    agent = {
        "agent_id": f"boats-{run}",
        "name": "Boat shop",
        "greeting": GREETING,
        "phone_numbers": [number],
        # Patient: a 900 ms pause does not end this agent's turns (the default ends at 500 ms).
        "turn_taking": {"end_of_turn_silence_ms": 1500},
    }
    async with httpx.AsyncClient(base_url=stack.base_url) as api:
        created = await api.post("/api/agents", json=agent)
        assert created.status_code == 201, created.text
        refused = await api.post("/api/agents", json=agent | {"agent_id": f"other-{run}"})
        assert refused.status_code == 409, refused.text  # the number is the boat shop's
        assert agent["agent_id"] in refused.json()["detail"]
    # Every service learns the new agent from the bus, each within its background fetch wait
    # (500 ms): calls placed that soon after the change may still get the default agent.
    await asyncio.sleep(PROPAGATION_S)

    phone = await stack.phone_call(to_number=number)
    async with phone as caller:
        greeting = await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        finished = await caller.say(
            telephone_speech("I would like to buy")
            + MULAW_SILENCE * round(0.9 * TELEPHONE.sample_rate)
            + telephone_speech("a small sailing boat.")
        )
        await caller.wait_for_agent_audio(after=finished, quiet_s=2.5)

    assert share_of_words(GREETING, transcribe(recognizer, greeting, TELEPHONE)) >= 0.6
    record = await wait_for_record(stack.base_url, phone.call_sid)
    assert record["agent_id"] == agent["agent_id"]
    said = [t for t in record["turns"] if t["role"] == "user"]
    assert len(said) == 1, said  # one turn across the pause
