"""Properties of the audio primitives, for any input the bus could carry: the G.711 codec, the
decoding of any contract format to mono PCM16 and back, resampling whole or streamed, DTMF.

Examples are bounded by the workspace's Hypothesis profile (conftest.py at the root)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from voicebus_audio import (
    PartialSampleError,
    Resampler,
    dtmf_tones,
    from_mono_pcm16,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    resample,
    to_mono_pcm16,
)
from voicebus_audio.dtmf import FREQUENCIES, WAIT, WAIT_MS
from voicebus_contracts import AudioFormat

MULAW_NEGATIVE_ZERO = 0x7F
"""The one mu-law code that encodes again as another: -0 decodes to 0, whose code is 0xFF."""
MULAW_PEAK = 32124
"""The largest magnitude a mu-law code decodes to (G.711's 8159 on its 14-bit scale)."""
DITHER_LSB = 2
"""soxr dithers its 16-bit output (TPDF, +-1 LSB): two runs that cut a stream differently may
differ by this much in any sample, and no more."""

RATES = st.sampled_from([8_000, 11_025, 16_000, 22_050, 24_000, 44_100, 48_000])
"""The rates a caller's or a provider's audio comes at."""


def pcm16(max_size: int = 4_000) -> st.SearchStrategy[npt.NDArray[np.int16]]:
    return hnp.arrays(np.int16, st.integers(0, max_size))


def mulaw_step_error(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """The most each sample may move through mu-law and back.

    G.711 works on 14 bits (the 2 low bits dropped: up to 3 off); there a biased magnitude
    m = |x| + 33 falls in a segment [2^(s+5), 2^(s+6)) of 16 steps of 2^(s+1) and decodes to the
    middle of its step, 2^s <= m/32 away, which is 4 times that on the 16-bit scale. Clipping
    beyond the peak stays within the bound of the top segment."""
    biased = np.abs(samples.astype(np.int32) >> 2) + 33
    bound: npt.NDArray[np.float64] = biased / 8 + 3
    return bound


def expected_length(samples: int, *, from_rate: int, to_rate: int) -> int:
    """`samples` at `from_rate` last this many samples at `to_rate` (rounded half up)."""
    return (2 * samples * to_rate + from_rate) // (2 * from_rate)


# --- G.711 mu-law ----------------------------------------------------------------------------


@given(st.binary(max_size=4_000))
def test_any_bytes_decode_as_mulaw_one_sample_each(mulaw: bytes) -> None:
    samples = mulaw_to_pcm16(mulaw)
    assert samples.dtype == np.int16
    assert len(samples) == len(mulaw)
    assert np.all(np.abs(samples.astype(np.int32)) <= MULAW_PEAK)


@given(st.binary(max_size=4_000))
def test_decoded_mulaw_encodes_to_the_same_codes(mulaw: bytes) -> None:
    again = pcm16_to_mulaw(mulaw_to_pcm16(mulaw))
    same = bytes(0xFF if code == MULAW_NEGATIVE_ZERO else code for code in mulaw)
    assert again == same


@given(pcm16())
def test_pcm16_through_mulaw_stays_within_its_quantization_error(
    samples: npt.NDArray[np.int16],
) -> None:
    mulaw = pcm16_to_mulaw(samples)
    assert len(mulaw) == len(samples)
    heard = mulaw_to_pcm16(mulaw).astype(np.int32)
    error = np.abs(heard - samples.astype(np.int32))
    assert np.all(error <= mulaw_step_error(samples))
    # Quantization never turns a sound over: no sample changes sign.
    assert np.all(np.sign(heard) * np.sign(samples) >= 0)


@given(st.integers(-32768, 32767), st.integers(-32768, 32767))
def test_mulaw_keeps_the_order_of_samples(a: int, b: int) -> None:
    low, high = sorted((a, b))
    heard = mulaw_to_pcm16(pcm16_to_mulaw(np.array([low, high], dtype=np.int16)))
    assert heard[0] <= heard[1]


# --- any contract format, as mono PCM16 ------------------------------------------------------

FORMATS = st.builds(
    AudioFormat,
    encoding=st.sampled_from(["mulaw", "pcm16"]),
    sample_rate=RATES,
    channels=st.sampled_from([1, 2]),
)


@given(FORMATS, st.binary(max_size=4_000))
def test_any_bytes_decode_to_whole_samples_or_are_refused(fmt: AudioFormat, audio: bytes) -> None:
    frame_bytes = fmt.bytes_per_sample * fmt.channels
    if len(audio) % frame_bytes:
        with pytest.raises(PartialSampleError):
            to_mono_pcm16(audio, fmt)
        return
    samples = to_mono_pcm16(audio, fmt)
    assert samples.dtype == np.int16
    assert len(samples) == len(audio) // frame_bytes


@given(FORMATS, pcm16())
def test_mono_pcm16_encodes_to_whole_samples_and_decodes_back(
    fmt: AudioFormat, samples: npt.NDArray[np.int16]
) -> None:
    audio = from_mono_pcm16(samples, fmt)
    assert len(audio) == len(samples) * fmt.bytes_per_sample * fmt.channels
    decoded = to_mono_pcm16(audio, fmt)
    if fmt.encoding == "pcm16":
        assert np.array_equal(decoded, samples)
    else:
        expected = mulaw_to_pcm16(pcm16_to_mulaw(samples))
        assert np.array_equal(decoded, expected)


@given(st.binary(max_size=4_000).map(lambda raw: raw[: len(raw) // 2 * 2]))
def test_mono_pcm16_bytes_survive_decoding_unchanged(audio: bytes) -> None:
    fmt = AudioFormat(encoding="pcm16", sample_rate=16_000)
    assert from_mono_pcm16(to_mono_pcm16(audio, fmt), fmt) == audio


# --- resampling ------------------------------------------------------------------------------


@given(pcm16(), RATES, RATES)
def test_resampling_a_buffer_gives_its_duration_at_the_new_rate(
    samples: npt.NDArray[np.int16], from_rate: int, to_rate: int
) -> None:
    out = resample(samples, from_rate=from_rate, to_rate=to_rate)
    assert out.dtype == np.int16
    assert len(out) == expected_length(len(samples), from_rate=from_rate, to_rate=to_rate)
    if from_rate == to_rate:
        assert np.array_equal(out, samples)


@st.composite
def cut(draw: st.DrawFn, samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    """`samples` cut in chunks at arbitrary places (empty chunks and single samples included)."""
    places = draw(st.lists(st.integers(0, len(samples)), max_size=6))
    return list(np.split(samples, sorted(places)))


@given(st.data(), pcm16(), RATES, RATES)
def test_a_stream_cut_anywhere_resamples_as_the_whole_buffer_does(
    data: st.DataObject, samples: npt.NDArray[np.int16], from_rate: int, to_rate: int
) -> None:
    resampler = Resampler(from_rate=from_rate, to_rate=to_rate)
    chunks = [resampler.process(chunk) for chunk in data.draw(cut(samples))]
    streamed = np.concatenate([*chunks, resampler.flush()])
    whole = resample(samples, from_rate=from_rate, to_rate=to_rate)
    assert streamed.dtype == np.int16
    assert len(streamed) == len(whole)
    assert np.all(np.abs(streamed.astype(np.int32) - whole.astype(np.int32)) <= DITHER_LSB)


# --- DTMF ------------------------------------------------------------------------------------

KEYS = "".join(FREQUENCIES)


@given(st.text(alphabet=KEYS + WAIT, max_size=12), st.sampled_from([8_000, 16_000, 24_000]))
def test_dtmf_lasts_its_tones_gaps_and_waits_and_never_clips(digits: str, rate: int) -> None:
    tones = dtmf_tones(digits, sample_rate=rate, tone_ms=60, gap_ms=40)
    waits = digits.count(WAIT)
    keys = len(digits) - waits
    assert len(tones) == keys * (rate * 60 // 1000 + rate * 40 // 1000) + waits * (
        rate * WAIT_MS // 1000
    )
    assert tones.dtype == np.int16
    assert np.all(np.abs(tones.astype(np.int32)) < 32767)


@given(st.text(max_size=12).filter(lambda digits: set(digits) - set(KEYS + WAIT)))
def test_dtmf_refuses_anything_but_keys_and_waits(digits: str) -> None:
    with pytest.raises(ValueError, match="is not a DTMF key"):
        dtmf_tones(digits, sample_rate=8_000)
