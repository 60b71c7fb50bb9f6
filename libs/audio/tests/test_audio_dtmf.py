"""DTMF tones: each key's pair of frequencies, detected back after the trip through mu-law."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voicebus_audio import dtmf_tones, mulaw_to_pcm16, pcm16_to_mulaw
from voicebus_audio.dtmf import FREQUENCIES, WAIT_MS


def goertzel_power(samples: npt.NDArray[np.float64], freq: float, rate: int) -> float:
    """The signal's power at `freq` (Goertzel), as a DTMF receiver measures it."""
    coeff = 2 * np.cos(2 * np.pi * freq / rate)
    s_prev = s_prev2 = 0.0
    for x in samples:
        s_prev, s_prev2 = x + coeff * s_prev - s_prev2, s_prev
    return float(s_prev2**2 + s_prev**2 - coeff * s_prev * s_prev2)


def detect_key(samples: npt.NDArray[np.int16], rate: int) -> str:
    """The key whose two tones dominate `samples`."""
    signal = samples.astype(np.float64)
    lows = sorted({low for low, _ in FREQUENCIES.values()})
    highs = sorted({high for _, high in FREQUENCIES.values()})
    low = max(lows, key=lambda f: goertzel_power(signal, f, rate))
    high = max(highs, key=lambda f: goertzel_power(signal, f, rate))
    return next(key for key, pair in FREQUENCIES.items() if pair == (low, high))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_key_is_detected_after_mulaw(rate: int) -> None:
    keys = "".join(FREQUENCIES)
    audio = mulaw_to_pcm16(pcm16_to_mulaw(dtmf_tones(keys, sample_rate=rate)))
    step = rate * 200 // 1000  # a 100 ms tone, then a 100 ms gap
    heard = "".join(
        detect_key(audio[i * step : i * step + step // 2], rate) for i in range(len(keys))
    )
    assert heard == keys


def test_gaps_are_silent_and_tones_do_not_clip() -> None:
    audio = dtmf_tones("5", sample_rate=8000)
    assert len(audio) == 1600
    assert np.abs(audio[800:]).max() == 0
    assert 0.5 * 32767 < np.abs(audio[:800]).max() < 32767


def test_w_waits_half_a_second() -> None:
    assert len(dtmf_tones("w", sample_rate=8000)) == 8000 * WAIT_MS // 1000
    assert len(dtmf_tones("", sample_rate=8000)) == 0


def test_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'x' is not a DTMF key"):
        dtmf_tones("1x", sample_rate=8000)
