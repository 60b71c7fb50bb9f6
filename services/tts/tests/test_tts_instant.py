"""Choosing the TTS provider, and the instant synthesizer benchmarks use."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from faststream.kafka import TestKafkaBroker
from pydantic import ValidationError

from voicebus_contracts import (
    TELEPHONE,
    CallRoute,
    Envelope,
    OutboundAudioChunk,
    ReplyTextChunk,
    envelope,
)
from voicebus_contracts.topics import REPLIES, gateway_topic
from voicebus_runtime.bus import publish
from voicebus_runtime.lanes import CallLanes
from voicebus_runtime.settings import BusSettings
from voicebus_tts import espeak
from voicebus_tts.app import create_broker, synthesizers_for
from voicebus_tts.core import Speaker
from voicebus_tts.espeak import EspeakSynthesizer
from voicebus_tts.instant import MAX_TONE_MS, SAMPLE_RATE, InstantSynthesizer
from voicebus_tts.ports import Sentence, SpeechSynthesizer
from voicebus_tts.settings import TtsSettings
from voicebus_tts.voices import VoiceChoice

GATEWAY_ID = "gw-bench"


@pytest.fixture
def instant(monkeypatch: pytest.MonkeyPatch) -> SpeechSynthesizer:
    """The synthesizer VOICEBUS_TTS_PROVIDER=instant picks; starting eSpeak NG fails the test."""

    def no_espeak() -> None:
        raise AssertionError("eSpeak NG was started for the instant provider")

    monkeypatch.setattr(espeak, "_engine", no_espeak)
    monkeypatch.setenv("VOICEBUS_TTS_PROVIDER", "instant")
    offered = synthesizers_for(TtsSettings())
    assert list(offered) == ["instant"]  # nothing else is offered beside it
    return offered["instant"]


async def spoken(synthesizer: SpeechSynthesizer, text: str) -> npt.NDArray[np.int16]:
    chunks = [
        chunk
        async for chunk in synthesizer.synthesize(Sentence(text, "r", last=True), voice="en-us")
    ]
    assert {chunk.sample_rate for chunk in chunks} <= {SAMPLE_RATE}
    return np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.int16)


async def test_the_instant_provider_speaks_a_quiet_tone_as_long_as_the_text(
    instant: SpeechSynthesizer,
) -> None:
    assert isinstance(instant, InstantSynthesizer)
    tone = await spoken(instant, "Hello there!")

    assert len(tone) == SAMPLE_RATE * 12 * 60 // 1000  # 12 characters, 60 ms each
    spectrum = np.abs(np.fft.rfft(tone))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(tone) == pytest.approx(440, abs=5)
    assert np.abs(tone).max() < 0.1 * 32768
    assert abs(int(tone[0])) < 50  # fades in and out: no click where sentences join
    assert abs(int(tone[-1])) < 50
    assert np.array_equal(tone, await spoken(instant, "Other words."))  # same length, same tone


async def test_the_instant_tone_follows_the_configured_rate_and_is_capped() -> None:
    synthesizer = synthesizers_for(TtsSettings(provider="instant", instant_ms_per_char=10))[
        "instant"
    ]

    assert len(await spoken(synthesizer, "  Okay.\n")) == SAMPLE_RATE * 5 * 10 // 1000
    assert len(await spoken(synthesizer, "la " * 2_000)) == SAMPLE_RATE * MAX_TONE_MS // 1000
    assert len(await spoken(synthesizer, " ")) == 0


async def test_with_the_instant_provider_a_reply_reaches_the_gateway_as_paced_audio(
    instant: SpeechSynthesizer,
) -> None:
    class OneGateway:
        async def lookup(self, call_id: str) -> CallRoute | None:
            return CallRoute(
                call_id=call_id,
                gateway_id=GATEWAY_ID,
                transport="twilio",
                agent_id="demo",
                audio_out=TELEPHONE,
            )

    lanes = CallLanes()
    broker = create_broker(
        bus=BusSettings(instance_id="test"),
        speaker=Speaker(chunk_ms=200),
        routes=OneGateway(),
        voices=VoiceChoice(
            default="instant", synthesizers={"instant": instant}, voices={"instant": "en-us"}
        ),
        lanes=lanes,
    )
    received: list[OutboundAudioChunk] = []

    @broker.subscriber(gateway_topic(GATEWAY_ID).name)
    async def on_gateway(env: Envelope[OutboundAudioChunk]) -> None:
        received.append(env.event)

    async with TestKafkaBroker(broker):
        for seq, text in enumerate(["Hello there.", "How can I help?"]):
            chunk = ReplyTextChunk(
                reply_id="r-1", in_reply_to="t-1", seq=seq, text=text, last=seq == 1
            )
            await publish(broker, REPLIES, envelope(chunk, call_id="call-1", producer="agent"))
        await lanes.idle()

    assert [chunk.last for chunk in received] == [False] * (len(received) - 1) + [True]
    assert {chunk.format for chunk in received} == {TELEPHONE}
    assert max(len(chunk.audio) for chunk in received) == 1_600  # 200 ms at 8 kHz
    for sentence, characters in enumerate([12, 15]):
        audio = sum(len(chunk.audio) for chunk in received if chunk.sentence == sentence)
        assert audio / TELEPHONE.sample_rate == pytest.approx(characters * 0.060, abs=0.002)


def test_espeak_is_the_default_provider_and_offered_alone_without_cloud_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("CARTESIA_API_KEY", "OPENAI_API_KEY", "DEEPGRAM_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    offered = synthesizers_for(TtsSettings())
    assert list(offered) == ["espeak"]
    assert isinstance(offered["espeak"], EspeakSynthesizer)


def test_an_unknown_provider_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_TTS_PROVIDER", "cartesya")
    with pytest.raises(ValidationError, match=r"VOICEBUS_TTS_PROVIDER must be one of .*'cartesya'"):
        TtsSettings()
