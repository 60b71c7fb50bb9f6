"""Caller speech for the media tests: eSpeak NG driven through ctypes, as the tts service would."""

from __future__ import annotations

import ctypes

import espeakng_loader
import numpy as np
import numpy.typing as npt
import pytest

from voicebus_audio import resample

ESPEAK_RATE = 22_050
"""eSpeak NG always synthesizes PCM16 at 22.05 kHz."""
AUDIO_OUTPUT_SYNCHRONOUS = 0x02
POS_CHARACTER = 1
SPOKEN_TEXT = "Hello there I would like to book a table for two people tonight please"

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def synthesize(text: str) -> npt.NDArray[np.int16]:
    """`text` spoken by eSpeak NG's default English voice, PCM16 at ESPEAK_RATE."""
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    rate = lib.espeak_Initialize(
        AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
    )
    assert rate == ESPEAK_RATE
    chunks: list[npt.NDArray[np.int16]] = []

    @_SynthCallback
    def collect(wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16))
        return 0

    lib.espeak_SetSynthCallback(collect)
    assert lib.espeak_SetVoiceByName(b"en") == 0
    encoded = text.encode()
    assert lib.espeak_Synth(encoded, len(encoded) + 1, 0, POS_CHARACTER, 0, 0, None, None) == 0
    assert lib.espeak_Synchronize() == 0
    return np.concatenate(chunks)


@pytest.fixture(scope="session")
def caller_speech() -> npt.NDArray[np.int16]:
    """A short sentence of caller speech, PCM16 at 16 kHz."""
    return resample(synthesize(SPOKEN_TEXT), from_rate=ESPEAK_RATE, to_rate=16_000)
