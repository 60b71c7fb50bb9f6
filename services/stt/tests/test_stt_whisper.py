"""The real faster-whisper adapter on the bundled model, hearing synthesized speech."""

from __future__ import annotations

import ctypes
from pathlib import Path

import espeakng_loader
import numpy as np
import numpy.typing as npt
import pytest

from voicebus_audio import resample
from voicebus_contracts import SPEECH_16K
from voicebus_stt.bundled_model import assemble_bundled_model
from voicebus_stt.whisper import WhisperRecognizer

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def speak(text: str) -> npt.NDArray[np.float32]:
    """`text` spoken by eSpeak NG, as float32 samples at 16 kHz."""
    espeak = ctypes.CDLL(espeakng_loader.get_library_path())
    espeak.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    sample_rate = espeak.espeak_Initialize(
        AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
    )
    chunks: list[npt.NDArray[np.int16]] = []

    def on_audio(wav: ctypes._Pointer[ctypes.c_short], num_samples: int, _events: int) -> int:
        if num_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    callback = SynthCallback(on_audio)  # kept referenced until synthesis is over
    espeak.espeak_SetSynthCallback(callback)
    espeak.espeak_SetVoiceByName(b"en-us")
    encoded = text.encode()
    assert (
        espeak.espeak_Synth(
            encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
        )
        == 0
    )
    pcm = resample(np.concatenate(chunks), from_rate=sample_rate, to_rate=SPEECH_16K.sample_rate)
    return pcm.astype(np.float32) / 32768.0


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
