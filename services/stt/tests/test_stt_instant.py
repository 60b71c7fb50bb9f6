"""Choosing the STT provider, and the instant recognizer benchmarks use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from voicebus_stt import app
from voicebus_stt.app import recognizer_for
from voicebus_stt.instant import InstantRecognizer
from voicebus_stt.ports import Transcription
from voicebus_stt.settings import SttSettings


def _never_load_whisper(**_: object) -> None:
    raise AssertionError("Whisper was loaded for the instant provider")


def test_the_instant_provider_hears_its_phrase_without_loading_whisper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "WhisperRecognizer", _never_load_whisper)
    monkeypatch.setenv("VOICEBUS_STT_PROVIDER", "instant")
    monkeypatch.setenv("VOICEBUS_STT_INSTANT_TEXT", "hello there")
    recognizer = recognizer_for(SttSettings(model_cache_dir=tmp_path))

    assert isinstance(recognizer, InstantRecognizer)
    speech = np.random.default_rng(7).uniform(-0.5, 0.5, 16_000).astype(np.float32)
    silence = np.zeros(8_000, dtype=np.float32)
    heard = [recognizer.transcribe(speech), recognizer.transcribe(silence)]
    assert heard == [Transcription(text="hello there", language="en")] * 2
    assert list(tmp_path.iterdir()) == []  # the bundled model was not even assembled


def test_the_instant_provider_reports_the_configured_language_or_none() -> None:
    assert recognizer_for(SttSettings(provider="instant", language="de")).transcribe(
        np.zeros(1_600, dtype=np.float32)
    ) == Transcription(text="this is an instant transcript", language="de")
    assert recognizer_for(SttSettings(provider="instant", language="")).transcribe(
        np.zeros(1_600, dtype=np.float32)
    ) == Transcription(text="this is an instant transcript", language=None)


def test_whisper_is_the_default_provider_and_loads_the_configured_model(tmp_path: Path) -> None:
    assert SttSettings().provider == "whisper"
    # An empty directory: the Whisper adapter refuses it, which shows it is the one being loaded.
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 Whisper model"):
        recognizer_for(SttSettings(model_dir=tmp_path))


def test_an_unknown_provider_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_STT_PROVIDER", "deepgrm")
    with pytest.raises(ValidationError, match=r"VOICEBUS_STT_PROVIDER must be one of .*'deepgrm'"):
        SttSettings()
