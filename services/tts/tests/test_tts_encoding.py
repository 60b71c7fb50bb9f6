from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebus_audio import mulaw_to_pcm16
from voicebus_contracts import TELEPHONE, AudioFormat
from voicebus_tts.core import SpeechEncoder
from voicebus_tts.ports import PcmChunk

SPEECH_RATE = 22_050
AMPLITUDE = 8_000


def tone(hz: float, seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(int(SPEECH_RATE * seconds)) / SPEECH_RATE
    return (AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def encoded(samples: npt.NDArray[np.int16], audio_out: AudioFormat, chunk: int) -> bytes:
    speech = SpeechEncoder(audio_out)
    pieces = [
        speech.encode(PcmChunk(samples=samples[i : i + chunk], sample_rate=SPEECH_RATE))
        for i in range(0, len(samples), chunk)
    ]
    return b"".join(pieces) + speech.finish()


def peak_hz(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_a_tone_keeps_its_pitch_on_the_telephone() -> None:
    out = mulaw_to_pcm16(encoded(tone(1_000, 1.0), TELEPHONE, chunk=2_205))

    assert abs(len(out) - 8_000) <= 2
    assert abs(peak_hz(out, 8_000) - 1_000) <= 2


def test_chunked_audio_matches_the_whole_and_has_no_clicks_at_the_joins() -> None:
    samples = tone(1_000, 1.0)
    whole = mulaw_to_pcm16(encoded(samples, TELEPHONE, chunk=len(samples))).astype(int)
    # Odd chunk sizes put the joins at every phase of the resampler.
    chunked = mulaw_to_pcm16(encoded(samples, TELEPHONE, chunk=997)).astype(int)

    assert len(chunked) == len(whole)
    assert np.max(np.abs(chunked - whole)) <= 0.02 * AMPLITUDE
    # Between two samples at 8 kHz a 1 kHz sine moves at most 2*A*sin(pi/8) ~ 0.77 A; a click
    # at a join would jump further. The first and last 10 ms hold the filter's ramps.
    steps = np.abs(np.diff(chunked[80:-80]))
    assert np.max(steps) < 0.85 * AMPLITUDE


def test_web_audio_is_pcm16_at_the_calls_rate() -> None:
    web = AudioFormat(encoding="pcm16", sample_rate=16_000)
    out = np.frombuffer(encoded(tone(1_000, 1.0), web, chunk=2_205), dtype="<i2")

    assert abs(len(out) - 16_000) <= 2
    assert abs(peak_hz(out, 16_000) - 1_000) <= 2


def test_stereo_web_audio_carries_the_voice_on_both_channels() -> None:
    stereo = AudioFormat(encoding="pcm16", sample_rate=22_050, channels=2)
    samples = tone(1_000, 0.1)
    frames = np.frombuffer(encoded(samples, stereo, chunk=500), dtype="<i2").reshape(-1, 2)

    np.testing.assert_array_equal(frames[:, 0], samples)
    np.testing.assert_array_equal(frames[:, 1], samples)
