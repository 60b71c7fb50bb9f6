"""A recognizer that answers at once with a fixed phrase, for benchmarks and load tests only.

With it, what a turn costs is the platform's own overhead: the bus, the services, the pacing;
never use it for real calls, it does not listen.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebus_stt.ports import Transcription


class InstantRecognizer:
    """Hears `text` in every utterance, instantly."""

    def __init__(self, *, text: str) -> None:
        self._heard = Transcription(text=text, language="en")

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        return self._heard
