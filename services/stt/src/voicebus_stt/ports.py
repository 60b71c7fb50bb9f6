"""The STT service's port: what turns speech into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Transcription:
    """What a recognizer heard: the text (empty when it heard no words) and its language."""

    text: str
    language: str | None


class SpeechRecognizer(Protocol):
    """Transcribes one complete utterance.

    Blocking and CPU-bound: callers run it off the event loop, one utterance at a time.
    """

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        """Transcribe mono float32 samples in [-1, 1] at 16 kHz."""
        ...
