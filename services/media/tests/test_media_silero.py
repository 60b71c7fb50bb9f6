"""The Silero adapter on real (synthesized) speech, silence and low noise."""

from __future__ import annotations

import numpy as np
import pytest

from voicebus_media.ports import Samples
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import WINDOW_SAMPLES, SileroVad
from voicebus_media.turns import TurnDetector, TurnEnded, TurnGrew, TurnStarted

RATE = 16_000


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    return SileroVad()


def probabilities(silero: SileroVad, audio: Samples) -> list[float]:
    detector = silero.new_detector()
    whole = len(audio) // WINDOW_SAMPLES * WINDOW_SAMPLES
    return [
        detector.speech_probability(window) for window in audio[:whole].reshape(-1, WINDOW_SAMPLES)
    ]


def test_speech_is_heard_as_speech(silero: SileroVad, caller_speech: Samples) -> None:
    heard = probabilities(silero, caller_speech)
    assert sum(p >= 0.5 for p in heard) > 0.6 * len(heard)


def test_silence_and_low_noise_are_not_speech(silero: SileroVad) -> None:
    silence = np.zeros(2 * RATE, dtype=np.int16)
    noise = np.random.default_rng(7).normal(0, 100, 2 * RATE).astype(np.int16)
    assert max(probabilities(silero, silence)) < 0.5
    assert max(probabilities(silero, noise)) < 0.5


def test_each_call_keeps_its_own_state(silero: SileroVad, caller_speech: Samples) -> None:
    alone = probabilities(silero, caller_speech)
    first, second = silero.new_detector(), silero.new_detector()
    noise = np.random.default_rng(3).normal(0, 3_000, len(caller_speech)).astype(np.int16)
    interleaved = []
    for start in range(0, len(alone) * WINDOW_SAMPLES, WINDOW_SAMPLES):
        interleaved.append(first.speech_probability(caller_speech[start : start + WINDOW_SAMPLES]))
        second.speech_probability(noise[start : start + WINDOW_SAMPLES])
    assert interleaved == pytest.approx(alone)


def test_a_spoken_sentence_between_silences_is_one_turn(
    silero: SileroVad, caller_speech: Samples
) -> None:
    quiet = np.zeros(RATE, dtype=np.int16)
    audio = np.concatenate([quiet, caller_speech, quiet])
    detector = TurnDetector(vad=silero.new_detector(), settings=MediaSettings())
    events = detector.feed(audio, frame_start=0, heard_at=0.0)

    started, *grew, ended = events
    assert isinstance(started, TurnStarted)
    assert all(isinstance(e, TurnGrew) for e in grew)
    assert isinstance(ended, TurnEnded)
    speech_ms = 1000 * len(caller_speech) // RATE
    assert started.speech_offset_ms >= 1_000 - 100  # eSpeak starts with a little silence
    assert ended.speech_end_offset_ms <= 1_000 + speech_ms + 100
    assert len(ended.audio) >= 0.8 * len(caller_speech)
