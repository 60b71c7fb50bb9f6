"""The media service's ports: voice activity detection on 16 kHz PCM16 audio."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]
"""Mono PCM16 samples."""


class VoiceActivityDetector(Protocol):
    """Speech probability of one call's 16 kHz audio, window by window.

    Windows must be consecutive audio of the same call: the detector carries the model's
    recurrent state from one window to the next.
    """

    @property
    def window_samples(self) -> int:
        """How many samples each window passed to `speech_probability` must hold."""
        ...

    def speech_probability(self, window: Samples) -> float:
        """Probability in [0, 1] that `window` (exactly `window_samples` long) is speech."""
        ...


class VoiceActivityModel(Protocol):
    """A VAD model loaded once per process that gives every call its own detector state."""

    def new_detector(self) -> VoiceActivityDetector:
        """A detector with fresh state, for a call whose audio starts now."""
        ...
