"""Two gateway replicas (`make run REPLICAS="gateway=2"`), a call on each at the same time: each
caller hears the agent answer what that caller said, never the other call's audio."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from voicebus_contracts import TELEPHONE
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.speech import telephone_speech
from voicebus_stt.whisper import WhisperRecognizer

from .conftest import running_stack, share_of_words, stopped, transcribe, wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SENTENCES = (
    "Please book a table for two people tomorrow evening.",
    "I would like to cancel my dentist appointment on Friday.",
)


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = running_stack(tmp_path_factory.mktemp("replicas"), {}, replicas="gateway=2")
    yield stack
    stopped(stack)


async def converse(stack: RunningStack, gateway_url: str, sentence: str) -> tuple[str, bytes]:
    """Call through `gateway_url`, say `sentence` after the greeting; the call's id and the
    reply heard."""
    phone = await stack.phone_call(gateway_url=gateway_url)
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5)
        finished = await caller.say(telephone_speech(sentence))
        return phone.call_sid, await caller.wait_for_agent_audio(after=finished, quiet_s=1.5)


async def test_each_replica_plays_only_its_own_calls_reply(
    two_gateways: RunningStack, recognizer: WhisperRecognizer
) -> None:
    assert len(two_gateways.gateway_urls) == 2
    replies = await asyncio.gather(
        *(
            converse(two_gateways, url, sentence)
            for url, sentence in zip(two_gateways.gateway_urls, SENTENCES, strict=True)
        )
    )
    # What each caller was heard saying, as STT recognized it (the echo agent repeats it).
    heard_saying = [
        " ".join(
            t["text"] for t in (await wait_for_record(url, call_id))["turns"] if t["role"] == "user"
        )
        for url, (call_id, _) in zip(two_gateways.gateway_urls, replies, strict=True)
    ]
    for (_, reply), own_words, other_words in zip(
        replies, heard_saying, reversed(heard_saying), strict=True
    ):
        heard = transcribe(recognizer, reply, TELEPHONE)
        # The reply repeats what its own caller was heard saying (however well STT heard
        # eSpeak's voice): most of those words, and far more than the other call's.
        own, crossed = share_of_words(own_words, heard), share_of_words(other_words, heard)
        assert own >= 0.4, (own_words, heard)
        assert own >= crossed + 0.3, (own_words, other_words, heard)
