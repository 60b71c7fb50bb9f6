"""Each call's voice (its agent's provider and voice, where offered) and the phrase cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import numpy as np
import pytest
from pydantic import ValidationError

from voicebus_audio import to_mono_pcm16
from voicebus_contracts import TELEPHONE, AudioFormat, ReplyTextChunk, envelope
from voicebus_contracts.agents import AgentConfigured, AgentSpec, TextToSpeech
from voicebus_devstack.fake_openai import FakeOpenAI
from voicebus_runtime.agents import AgentDirectory
from voicebus_tts.app import synthesizers_for
from voicebus_tts.cartesia import CartesiaSynthesizer
from voicebus_tts.core import Speaker
from voicebus_tts.deepgram_speech import DeepgramSynthesizer
from voicebus_tts.lru import Lru
from voicebus_tts.openai_speech import OpenAiSynthesizer
from voicebus_tts.phrases import PhraseCache, PhraseKey
from voicebus_tts.ports import PcmChunk, Sentence
from voicebus_tts.settings import TtsSettings
from voicebus_tts.voices import Voice, VoiceChoice


class Counting:
    """Speaks any text as two small chunks, counting what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        self.asked.append((sentence.text, voice))
        for value in (1, 2):
            yield PcmChunk(samples=np.full(160, value, np.int16), sample_rate=16_000)


def directory(*agents: AgentSpec) -> AgentDirectory:
    known = AgentDirectory()
    for spec in agents:
        known.heard(envelope(AgentConfigured(agent=spec), call_id=spec.agent_id, producer="t"))
    return known


def agent(agent_id: str, **tts: str) -> AgentSpec:
    return AgentSpec(agent_id=agent_id, name=agent_id, tts=TextToSpeech.model_validate(tts))


def test_each_agent_is_spoken_by_its_provider_and_voice_where_offered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    espeak, cartesia = Counting(), Counting()
    choice = VoiceChoice(
        default="espeak",
        synthesizers={"espeak": espeak, "cartesia": cartesia},
        voices={"espeak": "en-us", "cartesia": "katie"},
        agents=directory(
            agent("fancy", provider="cartesia", voice="voice-42"),
            agent("plain", provider="cartesia"),
            agent("british", voice="en-gb"),
            agent("chatty", provider="openai", voice="alloy"),
        ),
    )
    picked = {
        a: (v.provider, v.name, v.synthesizer)
        for a in ("fancy", "plain", "british", "chatty", "unknown")
        for v in [choice.of(a)]
    }
    assert picked == {
        "fancy": ("cartesia", "voice-42", cartesia),
        "plain": ("cartesia", "katie", cartesia),
        "british": ("espeak", "en-gb", espeak),  # no provider named: the default's voice
        # Not offered (no key here): the default, with its own voice, not OpenAI's.
        "chatty": ("espeak", "en-us", espeak),
        "unknown": ("espeak", "en-us", espeak),
    }
    with caplog.at_level(logging.WARNING, logger="voicebus_tts"):
        choice.of("chatty")
        choice.of("chatty")
    assert caplog.text.count("wants TTS provider openai") <= 1


async def spoken(cache: PhraseCache, text: str, voice: str = "v", *, take: int = 99) -> int:
    stream = cache.synthesize(Sentence(text, "r", last=True), voice=voice)
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == take:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    return len(chunks)


async def test_a_repeated_phrase_is_synthesized_once_per_provider_voice_and_text() -> None:
    inner = Counting()
    phrases: Lru[PhraseKey, tuple[PcmChunk, ...]] = Lru(size=8)
    cache = PhraseCache(inner, provider="espeak", phrases=phrases, max_chars=20)

    assert await spoken(cache, "One moment, please.") == 2
    assert await spoken(cache, "One moment, please.") == 2  # from memory
    await spoken(cache, "One moment, please.", voice="other")
    await spoken(cache, "A sentence far too long to be a phrase that repeats.")
    await spoken(cache, "A sentence far too long to be a phrase that repeats.")
    await spoken(cache, "Cut short.", take=1)  # closed early: not kept
    await spoken(cache, "Cut short.")

    assert inner.asked == [
        ("One moment, please.", "v"),
        ("One moment, please.", "other"),
        ("A sentence far too long to be a phrase that repeats.", "v"),
        ("A sentence far too long to be a phrase that repeats.", "v"),
        ("Cut short.", "v"),
        ("Cut short.", "v"),
    ]


def test_a_cloud_provider_is_offered_where_its_key_is_set_and_required_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test")
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_test")
    offered = synthesizers_for(TtsSettings())
    assert sorted(offered) == ["cartesia", "deepgram", "espeak", "openai"]
    assert isinstance(offered["cartesia"], CartesiaSynthesizer)
    assert isinstance(offered["openai"], OpenAiSynthesizer)
    assert isinstance(offered["deepgram"], DeepgramSynthesizer)

    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValidationError, match="OPENAI_API_KEY must be set"):
        TtsSettings(provider="openai")


@pytest.mark.parametrize(
    "audio_out", [TELEPHONE, AudioFormat(encoding="pcm16", sample_rate=16_000)]
)
async def test_a_cloud_voice_reaches_the_call_in_its_format_with_its_tone_intact(
    audio_out: AudioFormat,
) -> None:
    async with FakeOpenAI() as fake:
        voice = Voice(
            "openai",
            "alloy",
            OpenAiSynthesizer(fake.api_key, base_url=fake.base_url),
        )
        chunk = ReplyTextChunk(
            reply_id="r", in_reply_to=None, seq=0, text="Your table is booked.", last=True
        )
        text = envelope(chunk, call_id="CA1", producer="agent")
        sent = [
            env.event.audio
            async for env in Speaker(chunk_ms=200).speak(text, audio_out, voice=voice)
        ]

    heard = to_mono_pcm16(b"".join(sent), audio_out).astype(np.float64)
    expected_s = fake.voice.ms_per_char * len(chunk.text) / 1000  # the fake's tone length
    assert len(heard) / audio_out.sample_rate == pytest.approx(expected_s, abs=0.01)
    spectrum = np.abs(np.fft.rfft(heard))
    peak_hz = np.argmax(spectrum) * audio_out.sample_rate / len(heard)
    assert peak_hz == pytest.approx(440, abs=3)  # 24 kHz in, resampled without aliasing
    # No click where chunks join: no step between samples steeper than the tone's own.
    steepest = 2 * np.sin(np.pi * 440 / audio_out.sample_rate) * np.abs(heard).max()
    assert np.abs(np.diff(heard)).max() < 1.2 * steepest


async def test_numbers_money_and_emails_are_spoken_as_words_by_every_voice() -> None:
    counting = Counting()
    chunk = ReplyTextChunk(
        reply_id="r", in_reply_to=None, seq=0, text="It costs $12.50, write to a@b.com.", last=True
    )
    text = envelope(chunk, call_id="CA1", producer="agent")
    voice = Voice("cartesia", "voice-42", counting, language="en-us")
    async for _ in Speaker(chunk_ms=200).speak(text, TELEPHONE, voice=voice):
        pass
    assert counting.asked == [
        ("It costs twelve dollars and fifty cents, write to a at b dot com.", "voice-42")
    ]
    british = directory(AgentSpec(agent_id="uk", name="UK", stt={"language": "en-gb"}))
    choice = VoiceChoice(
        default="espeak", synthesizers={"espeak": counting}, voices={"espeak": "en"}, agents=british
    )
    assert (choice.of("uk").language, choice.of("other").language) == ("en-gb", "en")
