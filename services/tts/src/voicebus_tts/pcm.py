"""Speech as providers stream it: 16-bit little-endian PCM in network pieces of any size."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class Linear16Decoder:
    """Samples from 16-bit little-endian PCM arriving in network pieces of any size.

    A piece may end in the middle of a sample: its spare byte is kept and starts the next
    piece's samples, so no sample is torn in two and none is shifted by a byte.
    """

    def __init__(self) -> None:
        self._spare = b""

    def samples(self, piece: bytes) -> npt.NDArray[np.int16]:
        """The whole samples `piece` completes, maybe none."""
        data = self._spare + piece
        whole = len(data) - len(data) % 2
        self._spare = data[whole:]
        return np.frombuffer(data[:whole], dtype="<i2").astype(np.int16)
