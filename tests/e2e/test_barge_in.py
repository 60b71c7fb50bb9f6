"""The caller interrupts the agent's greeting: the agent stops at once, forgets what the caller
did not hear, and answers the interruption; an "uh-huh" over the agent does not stop it."""

from __future__ import annotations

import asyncio
import time

import pytest

from voicebus_contracts import TELEPHONE
from voicebus_devstack.caller import TwilioCaller
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import share_of_words, transcribe, words

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

INTERRUPTION = "Please book a table for two people tomorrow evening."
GREETING_ONLY = {"help", "today", "demo"}
"""Words of the greeting ("... demo agent. How can I help you today?") no answer contains."""


async def call(stack: RunningStack) -> TwilioCaller:
    return await stack.phone_call()


async def first_audio(caller: TwilioCaller, timeout_s: float = 30.0) -> float:
    deadline = time.monotonic() + timeout_s
    while caller.heard.last_at is None:
        assert time.monotonic() < deadline, "no greeting"
        await asyncio.sleep(0.02)
    return caller.heard.frames[0][0]


async def test_the_caller_interrupts_the_greeting_and_is_answered(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    async with await call(stack) as caller:
        await first_audio(caller)
        await asyncio.sleep(1.0)  # a second into "Hello! You are talking to ..."
        speaking_from = time.time()
        finished = await caller.say(telephone_speech(INTERRUPTION))
        reply = await caller.wait_for_agent_audio(after=finished, quiet_s=1.5)

    assert caller.heard.clears, "the agent's audio was not flushed"
    cleared_at = caller.heard.clears[0]
    assert speaking_from < cleared_at < finished
    # Nothing of the greeting after the clear: what played next is the answer to the caller.
    after_clear = caller.heard.since(cleared_at)
    heard = transcribe(recognizer, after_clear, TELEPHONE)
    assert share_of_words(INTERRUPTION, heard) >= 0.6, heard
    assert not GREETING_ONLY & words(heard), heard
    assert share_of_words(INTERRUPTION, transcribe(recognizer, reply, TELEPHONE)) >= 0.6


async def test_an_acknowledgement_over_the_agent_does_not_stop_it(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    async with await call(stack) as caller:
        greeting_from = await first_audio(caller)
        await asyncio.sleep(1.0)
        await caller.say(telephone_speech("Okay."))
        greeting = await caller.wait_for_agent_audio(after=greeting_from, quiet_s=4.0)

    heard = transcribe(recognizer, greeting, TELEPHONE)
    # The greeting went on to its end ("... How can I help you today?"), and "okay" got no
    # answer of its own.
    assert "help" in words(heard), heard
    assert not {"heard", "say"} & words(heard), heard
