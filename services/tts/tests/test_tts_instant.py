"""Provider choice, and the instant synthesizer benchmarks use."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from voicebus_tts.app import synthesizer_for
from voicebus_tts.espeak import EspeakSynthesizer
from voicebus_tts.instant import InstantSynthesizer
from voicebus_tts.settings import TtsSettings


async def test_instant_provider_speaks_a_tone_as_long_as_the_text() -> None:
    synthesizer = synthesizer_for(TtsSettings(provider="instant", instant_ms_per_char=10))
    assert isinstance(synthesizer, InstantSynthesizer)
    chunks = [chunk async for chunk in synthesizer.synthesize("Hello there!", voice="en-us")]
    samples = np.concatenate([c.samples for c in chunks])
    assert len(samples) / chunks[0].sample_rate == pytest.approx(12 * 0.010)
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * chunks[0].sample_rate / len(samples)
    assert peak_hz == pytest.approx(440, abs=10)


async def test_instant_provider_says_nothing_for_no_text() -> None:
    synthesizer = InstantSynthesizer(ms_per_char=60)
    assert [chunk async for chunk in synthesizer.synthesize("", voice="en-us")] == []


def test_espeak_is_the_default_provider() -> None:
    assert isinstance(synthesizer_for(TtsSettings()), EspeakSynthesizer)


def test_an_unknown_provider_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_TTS_PROVIDER", "cartesya")
    with pytest.raises(ValidationError, match="provider"):
        TtsSettings()
