"""Caller speech for the media tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_devstack.speech import speech_pcm16

SPOKEN_TEXT = "Hello there I would like to book a table for two people tonight please"


@pytest.fixture(scope="session")
def caller_speech() -> npt.NDArray[np.int16]:
    """A short sentence of caller speech, PCM16 at 16 kHz."""
    return speech_pcm16(SPOKEN_TEXT)
