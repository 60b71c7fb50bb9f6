"""Local speech recognition with faster-whisper (Whisper on CTranslate2), on the CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel

from voicebus_stt.ports import Transcription

WARM_UP_SAMPLES = 16_000
"""One second of silence: enough to run the encoder and decoder once."""
REQUIRED_FILES = ("model.bin", "tokenizer.json")
"""Without either, faster-whisper would fetch a model or tokenizer from the Hugging Face Hub."""

# faster-whisper logs every utterance's duration at INFO; the service logs its own line per turn.
logging.getLogger("faster_whisper").setLevel(logging.WARNING)


class WhisperRecognizer:
    """Transcribes utterances with a CTranslate2 Whisper model, int8-quantized on the CPU.

    The model loads in the constructor and runs once on silence, so the first caller turn does not
    pay for lazy initialisation. Media has already cut the audio into turns, so Whisper's own VAD
    is off, and each utterance is transcribed on its own (no previous text, no timestamps).
    """

    def __init__(self, *, model_dir: Path, cpu_threads: int, beam_size: int, language: str) -> None:
        missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir} is not a CTranslate2 Whisper model: no {missing}")
        self._model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads
        )
        self._beam_size = beam_size
        self._language = language or None
        self.transcribe(np.zeros(WARM_UP_SAMPLES, dtype=np.float32))

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        segments, info = self._model.transcribe(
            audio,
            language=self._language,
            beam_size=self._beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            # One greedy pass: the default fallback re-decodes at rising temperatures when the
            # first pass looks unsure, which multiplies the latency and makes the text random.
            temperature=0.0,
        )
        # `segments` is lazy: the decoding happens while it is consumed, here.
        text = "".join(segment.text for segment in segments).strip()
        return Transcription(text=text, language=info.language)
