"""Provider choice, and the instant recognizer benchmarks use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from voicebus_stt.app import recognizer_for
from voicebus_stt.instant import InstantRecognizer
from voicebus_stt.settings import SttSettings


def test_instant_provider_answers_its_phrase_without_loading_a_model(tmp_path: Path) -> None:
    settings = SttSettings(provider="instant", instant_text="hello there", model_cache_dir=tmp_path)
    recognizer = recognizer_for(settings)
    assert isinstance(recognizer, InstantRecognizer)
    heard = recognizer.transcribe(np.zeros(16_000, dtype=np.float32))
    assert heard.text == "hello there"
    assert list(tmp_path.iterdir()) == []  # no Whisper model was assembled


def test_an_unknown_provider_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICEBUS_STT_PROVIDER", "deepgrm")
    with pytest.raises(ValidationError, match="provider"):
        SttSettings()
