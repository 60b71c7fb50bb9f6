"""Silero VAD (v6, the ONNX model that ships inside faster-whisper) run streaming with ONNX Runtime.

The model is stateful: each call of `run` takes one 512-sample window at 16 kHz prefixed by the
last 64 samples of the previous window, plus the LSTM state (h, c) it returned last time.
See faster_whisper/vad.py (SileroVADModel), which runs the same model over a whole file at once.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime
from faster_whisper.utils import get_assets_path

from voicebus_media.ports import Samples

WINDOW_SAMPLES = 512
"""32 ms at 16 kHz: the only window size the 16 kHz model accepts."""
CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)
MODEL_FILE = "silero_vad_v6.onnx"


class SileroVad:
    """The Silero VAD model: one ONNX Runtime session shared by every call of the process."""

    def __init__(self, *, model_path: str | None = None) -> None:
        options = onnxruntime.SessionOptions()
        # Each call runs one tiny window at a time: threads would only cost scheduling.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            model_path or os.path.join(get_assets_path(), MODEL_FILE),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def new_detector(self) -> SileroDetector:
        return SileroDetector(session=self._session)


class SileroDetector:
    """One call's streaming Silero state: the LSTM state and the context carried between windows."""

    window_samples = WINDOW_SAMPLES

    def __init__(self, *, session: Any) -> None:
        self._session = session
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        # [context | window], reused: the context is the tail of the previous window.
        self._input = np.zeros((1, CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)

    def speech_probability(self, window: Samples) -> float:
        if window.shape != (WINDOW_SAMPLES,):
            raise ValueError(
                f"Silero needs windows of {WINDOW_SAMPLES} samples, got {window.shape}"
            )
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        np.multiply(window, 1.0 / 32768.0, out=self._input[0, CONTEXT_SAMPLES:], casting="unsafe")
        probability, self._h, self._c = self._session.run(
            None, {"input": self._input, "h": self._h, "c": self._c}
        )
        return float(probability[0])
