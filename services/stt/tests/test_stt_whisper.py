"""The real faster-whisper adapter on the bundled model, hearing synthesized speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_contracts import SPEECH_16K
from voicebus_devstack.speech import speech_pcm16
from voicebus_stt.bundled_model import assemble_bundled_model
from voicebus_stt.whisper import WhisperRecognizer


def speak(text: str) -> npt.NDArray[np.float32]:
    """`text` spoken, as float32 samples at 16 kHz."""
    return speech_pcm16(text).astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> WhisperRecognizer:
    model_dir = assemble_bundled_model(tmp_path_factory.mktemp("whisper-base"))
    return WhisperRecognizer(model_dir=model_dir, cpu_threads=2, beam_size=1, language="en")


def test_transcribes_a_spoken_booking_request(recognizer: WhisperRecognizer) -> None:
    heard = recognizer.transcribe(
        speak("Hello, I would like to book a table for two people tomorrow evening.")
    )

    words = heard.text.lower()
    for word in ("hello", "book", "table", "people", "tomorrow", "evening"):
        assert word in words, heard.text
    assert heard.language == "en"


def test_hears_no_words_in_silence(recognizer: WhisperRecognizer) -> None:
    assert recognizer.transcribe(np.zeros(SPEECH_16K.sample_rate, dtype=np.float32)).text == ""


def test_refuses_a_directory_that_is_not_a_model_rather_than_downloading_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 Whisper model"):
        WhisperRecognizer(model_dir=tmp_path, cpu_threads=1, beam_size=1, language="en")


def test_a_sketch_of_a_turn_so_far_hears_its_words(recognizer: WhisperRecognizer) -> None:
    heard = recognizer.sketch(speak("I would like to book a table for two people"))

    words = heard.text.lower()
    for word in ("like", "book", "table", "people"):
        assert word in words, heard.text
    assert heard.language == "en"


def test_a_sketch_of_a_short_word_does_not_run_on(recognizer: WhisperRecognizer) -> None:
    heard = recognizer.sketch(speak("Okay."))

    assert 1 <= len(heard.text.split()) <= 3, heard.text


def test_without_a_language_a_sketch_is_a_full_transcription(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model_dir = assemble_bundled_model(tmp_path_factory.mktemp("whisper-any-language"))
    anything = WhisperRecognizer(model_dir=model_dir, cpu_threads=2, beam_size=1, language="")
    audio = speak("Good morning, this is a test.")

    assert anything.sketch(audio) == anything.transcribe(audio)
