"""A web caller talks to voicebus through `/web/call`: it hears the greeting, says a sentence and
hears the reply, and its live transcript shows what it said (partial transcripts while it speaks,
then the final one) and what the agent answered.

Runs the real stack (broker, Redis, every service as its own process, the local models), once on
SQLite and once on PostgreSQL; what the caller heard is transcribed with Whisper.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from voicebus_contracts import SPEECH_16K
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import speech_pcm16
from voicebus_devstack.web_caller import WebCaller
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import share_of_words, transcribe, wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CALLER_SENTENCE = "Please book a table for two people tomorrow evening."
WAIT_S = 30.0
"""Guards against a hung test only; nothing here asserts how fast anything is."""


def is_subsequence(expected: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(item in remaining for item in expected)


async def until_listening(caller: WebCaller) -> None:
    """Wait until the client's last reported state is `listening` (the reply has played)."""
    deadline = time.monotonic() + WAIT_S
    while caller.messages_of("state")[-1]["state"] != "listening":
        assert time.monotonic() < deadline, caller.messages_of("state")
        await asyncio.sleep(0.05)


async def test_web_caller_hears_greeting_and_reply_and_sees_the_live_transcript(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    async with WebCaller(f"{stack.ws_url}/web/call") as caller:
        greeting = await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        finished_speaking = await caller.say(speech_pcm16(CALLER_SENTENCE))
        reply = await caller.wait_for_agent_audio(after=finished_speaking, quiet_s=1.5)
        await until_listening(caller)
    assert caller.call_id.startswith("web-")
    assert caller.messages[-1] == {"type": "call.ended", "reason": "caller hung up"}
    assert caller.close_code == 1000

    # The live transcript: what the caller said, then the agent's answer to that turn.
    [transcript] = caller.messages_of("transcript.final")
    assert share_of_words(CALLER_SENTENCE, transcript["text"]) >= 0.6, transcript
    texts = caller.messages_of("reply.text")
    greeting_text = " ".join(m["text"] for m in texts if m["in_reply_to"] is None)
    answer = [m for m in texts if m["in_reply_to"] == transcript["turn_id"]]
    answer_text = " ".join(m["text"] for m in answer)
    assert answer_text.startswith(f"I heard you say: {transcript['text'].rstrip('.!?')}.")
    assert answer[-1]["last"]
    speech = [m["type"] for m in caller.messages if m["type"].startswith("speech.")]
    assert speech == ["speech.started", "speech.stopped"]
    # While the caller spoke, partial transcripts of the turn so far, before the final one.
    partials = caller.messages_of("transcript.partial")
    assert partials, "no partial transcript while the caller spoke"
    assert {m["turn_id"] for m in partials} == {transcript["turn_id"]}
    order = [m["type"] for m in caller.messages if m["type"].startswith("transcript.")]
    assert order[-1] == "transcript.final", order
    assert share_of_words(partials[0]["text"], CALLER_SENTENCE) >= 0.5, partials
    states = [m["state"] for m in caller.messages_of("state")]
    assert is_subsequence(
        [
            "listening",
            "agent_speaking",  # the greeting
            "listening",
            "user_speaking",
            "thinking",
            "agent_speaking",  # the reply
            "listening",
        ],
        states,
    ), states

    # What the caller heard is what the agent said (most of the words: Whisper on eSpeak).
    heard_greeting = transcribe(recognizer, greeting, SPEECH_16K)
    heard_reply = transcribe(recognizer, reply, SPEECH_16K)
    assert share_of_words(greeting_text, heard_greeting) >= 0.6, heard_greeting
    assert share_of_words(answer_text, heard_reply) >= 0.6, heard_reply

    # The call is on record like a phone call.
    record = await wait_for_record(stack.base_url, caller.call_id)
    user_turns = [t for t in record["turns"] if t["role"] == "user"]
    assert [t["text"] for t in user_turns] == [transcript["text"]]
