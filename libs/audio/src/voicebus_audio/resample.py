"""Streaming sample-rate conversion with a proper anti-aliasing filter (soxr)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr


class Resampler:
    """Converts a stream of PCM16 chunks between rates, keeping filter state across chunks.

    Chunk joins stay seamless because the filter history carries over; call `flush` at the end
    of the stream to get the filter's tail.
    """

    def __init__(self, *, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
        )

    def process(self, samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        if self._stream is None:
            return samples
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(samples)
        return out

    def flush(self) -> npt.NDArray[np.int16]:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(
            np.zeros(0, dtype=np.int16), last=True
        )
        return out


def resample(
    samples: npt.NDArray[np.int16], *, from_rate: int, to_rate: int
) -> npt.NDArray[np.int16]:
    """Resample a whole buffer at once."""
    if from_rate == to_rate:
        return samples
    out: npt.NDArray[np.int16] = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return out
