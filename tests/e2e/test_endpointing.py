"""A caller who pauses mid-sentence is not cut off: "I would like to ... book a table for two
people." with 600 ms of silence in the middle is one turn with one answer."""

from __future__ import annotations

import time

import pytest

from voicebus_contracts import TELEPHONE
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import share_of_words, transcribe, wait_for_record, words

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MULAW_SILENCE = b"\xff"
PAUSE_S = 0.6


async def test_a_pause_mid_sentence_is_one_turn(
    stack: RunningStack, recognizer: WhisperRecognizer
) -> None:
    speech = (
        telephone_speech("I would like to")
        + MULAW_SILENCE * round(PAUSE_S * TELEPHONE.sample_rate)
        + telephone_speech("book a table for two people.")
    )
    phone = await stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        started = time.time()
        finished = await caller.say(speech)
        reply = await caller.wait_for_agent_audio(after=finished, quiet_s=2.5)

    talked_over = [at for at, _ in caller.heard.frames if started < at < finished]
    assert talked_over == [], "the agent answered the first half while the caller went on"

    record = await wait_for_record(stack.base_url, phone.call_sid)
    answers = [t for t in record["turns"] if t["role"] == "agent" and t["in_reply_to"]]
    assert len(answers) == 1, answers
    # The one answer took in both halves (the echo repeats what STT heard). Whisper hears
    # eSpeak's second half alone loosely ("We're capable for two people", "Work at table 42
    # people"): most of its words, not all, come through.
    answered = words(answers[0]["text"])
    assert "like" in answered, answers
    assert len(answered & {"book", "table", "two", "people"}) >= 2, answers
    # The one answer is the one the caller heard.
    assert share_of_words(answers[0]["text"], transcribe(recognizer, reply, TELEPHONE)) >= 0.5
