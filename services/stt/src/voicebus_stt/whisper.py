"""Local speech recognition with faster-whisper (Whisper on CTranslate2), on the CPU."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import ctranslate2
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

from voicebus_contracts import SPEECH_16K
from voicebus_stt.ports import Transcription

WARM_UP_SAMPLES = 16_000
"""One second of silence: enough to run the encoder and decoder once."""
WINDOW_S = 30
"""Whisper's audio window: the model was trained on 30 s, and faster-whisper pads every input."""
SKETCH_MIN_CONTEXT_S = 10
"""The shortest audio window a sketch runs on. The encoder's cost grows with its window (10 s
costs about a sixth of 30 s here); below about 10 s, Whisper repeats words of short clips."""
FRAMES_PER_S = 100
"""Log-mel frames per second of audio (10 ms hop)."""
MAX_DECODER_TOKENS = 448
SKETCH_TOKENS_PER_S = 8
"""Bounds a sketch's decoding: speech runs at about 3 tokens a second; a runaway repetition
stops early."""
REQUIRED_FILES = ("model.bin", "tokenizer.json")
"""Without either, faster-whisper would fetch a model or tokenizer from the Hugging Face Hub."""

# faster-whisper logs every utterance's duration at INFO; the service logs its own line per turn.
logging.getLogger("faster_whisper").setLevel(logging.WARNING)


class WhisperRecognizer:
    """Transcribes utterances with a CTranslate2 Whisper model, int8-quantized on the CPU.

    The model loads in the constructor and runs once on silence, so the first caller turn does not
    pay for lazy initialisation. Media has already cut the audio into turns, so Whisper's own VAD
    is off, and each utterance is transcribed on its own (no previous text, no timestamps).

    `sketch` is the cheap pass for partial transcripts: the encoder runs on a window just longer
    than the audio instead of Whisper's 30 s (whisper.cpp's `audio_ctx` idea), several times
    faster and a little less accurate, which suits text that the final transcript replaces.
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
        self._sketch_tokenizer = (
            None
            if self._language is None
            else Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=self._language,
            )
        )
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

    def sketch(self, audio: npt.NDArray[np.float32]) -> Transcription:
        """A quick transcription of a turn so far. Without a configured language (a sketch
        cannot detect one) or for long audio, it is a full transcription."""
        context_s = max(SKETCH_MIN_CONTEXT_S, math.ceil(len(audio) / SPEECH_16K.sample_rate) + 1)
        tokenizer = self._sketch_tokenizer
        if tokenizer is None or context_s >= WINDOW_S:
            return self.transcribe(audio)
        window = np.zeros(context_s * SPEECH_16K.sample_rate, dtype=np.float32)
        window[: len(audio)] = audio
        features = self._model.feature_extractor(window)[:, : context_s * FRAMES_PER_S]
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        max_length = min(MAX_DECODER_TOKENS, len(prompt) + 4 + SKETCH_TOKENS_PER_S * context_s)
        (result,) = self._model.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis])),
            [prompt],
            beam_size=1,
            max_length=max_length,
            suppress_blank=True,
        )
        text = tokenizer.decode(result.sequences_ids[0]).strip()
        return Transcription(text=text, language=self._language)
