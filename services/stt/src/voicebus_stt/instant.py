"""A recognizer that answers at once with a fixed phrase: for benchmarks and load tests only.

It loads no model and does not listen: every utterance, speech or silence, is heard as the same
configured phrase. With it, what a turn costs is the platform's own overhead (the bus, the
services, the pacing). Never use it for real calls.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebus_stt.ports import Transcription


class InstantRecognizer:
    """SpeechRecognizer that hears `text` (in `language`) in every utterance, instantly."""

    def __init__(self, *, text: str, language: str | None = "en") -> None:
        self._heard = Transcription(text=text, language=language)

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        return self._heard

    def sketch(self, audio: npt.NDArray[np.float32]) -> Transcription:
        return self._heard
