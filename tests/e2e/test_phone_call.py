"""A Twilio caller phones voicebus, hears the greeting, says a sentence and hears the reply.

Runs the real stack (broker, Redis, every service as its own process, the local models) and
checks the call's record through the public API, once on SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest

from voicebus_audio import mulaw_to_pcm16
from voicebus_contracts import TELEPHONE
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import share_of_words, transcribe, wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CALLER_SENTENCE = "Please book a table for two people tomorrow evening."


def seconds_of(mulaw: bytes) -> float:
    return len(mulaw) / 8000


def loudness(mulaw: bytes) -> float:
    return float(np.sqrt(np.mean(mulaw_to_pcm16(mulaw).astype(np.float64) ** 2)))


async def test_caller_hears_greeting_and_reply_and_the_call_is_on_record(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    caller_speech = telephone_speech(CALLER_SENTENCE)
    phone = await stack.phone_call()
    async with phone as caller:
        greeting = await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        finished_speaking = await caller.say(caller_speech)
        reply = await caller.wait_for_agent_audio(after=finished_speaking, quiet_s=1.5)
    call_sid = caller.call_sid

    assert seconds_of(greeting) > 1.0
    assert loudness(greeting) > 300
    heard_greeting = transcribe(recognizer, greeting, TELEPHONE)
    heard_reply = transcribe(recognizer, reply, TELEPHONE)

    record = await wait_for_record(stack.base_url, call_sid)
    turns = record["turns"]
    user_turns = [t for t in turns if t["role"] == "user"]
    agent_turns = [t for t in turns if t["role"] == "agent"]
    caller_words = user_turns[0]["text"]
    assert share_of_words(CALLER_SENTENCE, caller_words) >= 0.6, caller_words
    assert len(agent_turns) == 2  # the greeting and the reply
    answer = next(t for t in agent_turns if t["in_reply_to"] == user_turns[0]["turn_id"])
    assert answer["text"].startswith(f"I heard you say: {caller_words.rstrip('.!?')}.")
    assert turns.index(answer) > turns.index(user_turns[0])
    # What the caller heard is what the agent said (Whisper on eSpeak over a phone line is not
    # word-perfect, so most of the words are enough).
    greeting_turn = next(t for t in agent_turns if t["in_reply_to"] is None)
    assert share_of_words(greeting_turn["text"], heard_greeting) >= 0.6, heard_greeting
    assert share_of_words(answer["text"], heard_reply) >= 0.6, heard_reply
    latency = answer["latency"]
    assert all(latency[stage] is not None and latency[stage] >= 0 for stage in latency)
    assert latency["voice_to_voice_ms"] >= latency["endpoint_ms"] + latency["stt_ms"]

    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        listed = (await client.get("/api/calls")).json()
        assert call_sid in [c["call_id"] for c in listed]
        assert (await client.get("/api/calls/CA-no-such-call")).status_code == 404
        recorded = await client.get(f"/api/calls/{call_sid}/recording")
    # The call on record as a stereo WAV: the caller on the left, the agent on the right.
    assert recorded.status_code == 200
    assert recorded.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(recorded.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8_000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    caller_side, agent_side = (np.abs(stereo[:, side]).astype(np.float64) for side in (0, 1))
    assert agent_side.sum() > caller_side.sum()  # the greeting and the reply outlast the caller
    assert caller_side.max() > 1_000  # the caller's sentence is there too
