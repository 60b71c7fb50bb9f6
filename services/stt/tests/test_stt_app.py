"""The STT handler on FastStream's in-memory Kafka broker, with a scripted or instant recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import numpy as np
import numpy.typing as npt
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallStarted,
    Envelope,
    FinalTranscript,
    StageStamps,
    Utterance,
    derived_id,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentSpec, SpeechToText
from voicebus_contracts.topics import CALLS, TRANSCRIPTS, UTTERANCES
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings
from voicebus_stt.app import create_broker, recognizer_for, subscribe
from voicebus_stt.choice import TranscriberChoice
from voicebus_stt.ports import SpeechRecognizer, Transcription
from voicebus_stt.settings import SttSettings
from voicebus_stt.transcriber import Transcriber


class ScriptedRecognizer:
    """Hears the next scripted reply for each utterance; an exception in the script is raised."""

    def __init__(self, *replies: Transcription | Exception) -> None:
        self._replies = list(replies)

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    sketch = transcribe


BOOKING = Transcription(text="I would like to book a table", language="en")


def _utterance_env(turn_id: str = "turn-1") -> Envelope[Utterance]:
    utterance = Utterance(turn_id=turn_id, audio=bytes(16_000), format=SPEECH_16K, duration_ms=500)
    return envelope(
        utterance,
        call_id="call-1",
        producer="media",
        stamps=StageStamps(speech_ended=1000.0, turn_ended=1000.5),
        event_id=uuid4(),
    )


@asynccontextmanager
async def stt_worker(
    recognizer: SpeechRecognizer,
    *,
    other: SpeechRecognizer | None = None,
    agents: AgentDirectory | None = None,
) -> AsyncIterator[tuple[KafkaBroker, list[Envelope[FinalTranscript]]]]:
    """The STT broker under test (hearing with `recognizer` as whisper, and `other` as
    deepgram if given), and the transcripts it publishes."""
    bus = BusSettings(instance_id="test")
    broker = create_broker(bus)
    recognizers = {"whisper": recognizer} | ({"deepgram": other} if other else {})
    transcriber = TranscriberChoice(
        default="whisper",
        transcribers={name: Transcriber(recognizer=r) for name, r in recognizers.items()},
        agents=agents,
    )
    subscribe(broker, transcriber, bus=bus)
    transcripts: list[Envelope[FinalTranscript]] = []

    @broker.subscriber(TRANSCRIPTS.name)
    async def on_transcripts(env: Envelope[FinalTranscript]) -> None:
        transcripts.append(env)

    async with TestKafkaBroker(broker) as running:
        yield running, transcripts
    transcriber.close()


async def test_an_utterance_becomes_a_final_transcript_of_the_same_turn() -> None:
    utterance = _utterance_env("turn-7")
    async with stt_worker(ScriptedRecognizer(BOOKING)) as (broker, transcripts):
        await publish(broker, UTTERANCES, utterance)

    [transcript] = transcripts
    assert transcript.call_id == "call-1"
    assert transcript.producer == "stt"
    assert transcript.event == FinalTranscript(
        turn_id="turn-7", text="I would like to book a table", language="en", duration_ms=500
    )
    assert transcript.stamps.speech_ended == 1000.0
    assert transcript.stamps.turn_ended == 1000.5
    assert transcript.stamps.transcribed is not None
    assert transcript.stamps.transcribed > 1000.5
    assert transcript.event_id == derived_id(utterance.event_id, "transcript")


async def test_a_redelivered_utterance_yields_the_same_transcript_id() -> None:
    utterance = _utterance_env()
    async with stt_worker(ScriptedRecognizer(BOOKING, BOOKING)) as (broker, transcripts):
        await publish(broker, UTTERANCES, utterance)
        await publish(broker, UTTERANCES, utterance)

    assert len(transcripts) == 2
    assert transcripts[0].event_id == transcripts[1].event_id


async def test_a_failed_recognition_is_skipped_and_the_worker_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recognizer = ScriptedRecognizer(RuntimeError("model exploded"), BOOKING)
    async with stt_worker(recognizer) as (broker, transcripts):
        await publish(broker, UTTERANCES, _utterance_env("turn-1"))
        await publish(broker, UTTERANCES, _utterance_env("turn-2"))

    assert [t.event.turn_id for t in transcripts] == ["turn-2"]
    assert "call call-1 turn turn-1: utterance not transcribed" in caplog.text


async def test_the_instant_provider_hears_its_phrase_in_every_utterance() -> None:
    settings = SttSettings(provider="instant", instant_text="benchmark turn")
    async with stt_worker(recognizer_for(settings)) as (broker, transcripts):
        await publish(broker, UTTERANCES, _utterance_env("turn-1"))
        await publish(broker, UTTERANCES, _utterance_env("turn-2"))

    assert [t.event for t in transcripts] == [
        FinalTranscript(turn_id="turn-1", text="benchmark turn", language="en", duration_ms=500),
        FinalTranscript(turn_id="turn-2", text="benchmark turn", language="en", duration_ms=500),
    ]
    assert all(t.stamps.transcribed is not None for t in transcripts)


async def test_each_call_is_heard_by_the_provider_its_agent_chose() -> None:
    agents = AgentDirectory()
    cloud = AgentSpec(agent_id="cloud", name="Cloud", stt=SpeechToText(provider="deepgram"))
    agents.heard(envelope(AgentConfigured(agent=cloud), call_id="cloud", producer="agent"))
    local = ScriptedRecognizer(Transcription(text="heard locally", language="en"))
    remote = ScriptedRecognizer(Transcription(text="heard by the cloud", language="en"))
    started = CallStarted(
        transport="twilio",
        agent_id="cloud",
        gateway_id="gw",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
    )
    async with stt_worker(local, other=remote, agents=agents) as (broker, transcripts):
        await publish(broker, CALLS, envelope(started, call_id="call-2", producer="gateway"))
        await publish(broker, UTTERANCES, _utterance_env("turn-1"))  # call-1: default agent
        cloud_turn = _utterance_env("turn-2").model_copy(update={"call_id": "call-2"})
        await publish(broker, UTTERANCES, cloud_turn)

    assert [(t.call_id, t.event.text) for t in transcripts] == [
        ("call-1", "heard locally"),
        ("call-2", "heard by the cloud"),
    ]


def test_a_provider_the_worker_does_not_offer_falls_back_to_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agents = AgentDirectory()
    cloud = AgentSpec(agent_id="cloud", name="Cloud", stt=SpeechToText(provider="deepgram"))
    agents.heard(envelope(AgentConfigured(agent=cloud), call_id="cloud", producer="agent"))
    local = Transcriber(recognizer=ScriptedRecognizer())
    choice = TranscriberChoice(default="whisper", transcribers={"whisper": local}, agents=agents)

    choice.started("call-9", "cloud")

    assert choice.of("call-9") is local
    assert "wants STT provider deepgram, which this worker does not offer" in caplog.text
    local.close()
