"""What speech recognition costs per utterance, by utterance length, on this machine: a full
transcription (a turn's final transcript) and a sketch (a partial transcript)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voicebus_contracts import SPEECH_16K
from voicebus_devstack.speech import speech_pcm16
from voicebus_stt.ports import SpeechRecognizer

PASSAGE = (
    "Good morning, I am calling about my order from last week. It was supposed to arrive on "
    "Tuesday, but nothing has come yet, and the tracking page has not changed for three days. "
    "Could you please check what happened and tell me when I can expect the delivery? "
    "If it is lost, I would like a refund or a replacement, whichever is faster."
)


@dataclass
class SttCost:
    seconds: int
    compute_ms: list[float]
    sketch_ms: list[float]


def measure_stt_cost(
    recognizer: SpeechRecognizer, *, lengths_s: range, repeats: int
) -> list[SttCost]:
    """Transcribe the first N seconds of a spoken passage, `repeats` times for each N."""
    speech = speech_pcm16(PASSAGE).astype(np.float32) / 32768.0
    rate = SPEECH_16K.sample_rate
    costs = []
    for seconds in lengths_s:
        utterance = speech[: seconds * rate]
        costs.append(
            SttCost(
                seconds=seconds,
                compute_ms=[_timed(recognizer.transcribe, utterance) for _ in range(repeats)],
                sketch_ms=[_timed(recognizer.sketch, utterance) for _ in range(repeats)],
            )
        )
    return costs


def _timed(
    hear: Callable[[npt.NDArray[np.float32]], object], audio: npt.NDArray[np.float32]
) -> float:
    started = time.perf_counter()
    hear(audio)
    return (time.perf_counter() - started) * 1000.0
