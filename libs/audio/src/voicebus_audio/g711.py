"""G.711 mu-law codec (ITU-T G.711), vectorised with numpy lookup tables."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84
_CLIP_14 = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _encode_table() -> npt.NDArray[np.uint8]:
    # The reference algorithm works on 14-bit magnitudes (Sun's g711.c, as in CPython's audioop).
    samples = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), _CLIP_14) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = np.where(
        segment >= 8,
        0x7F,
        (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F),
    )
    return ((code ^ mask) & 0xFF).astype(np.uint8)


_DECODE = _decode_table()
_ENCODE = _encode_table()


def mulaw_to_pcm16(mulaw: bytes) -> npt.NDArray[np.int16]:
    """Decode mu-law bytes to 16-bit linear samples."""
    return _DECODE[np.frombuffer(mulaw, dtype=np.uint8)]


def pcm16_to_mulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """Encode 16-bit linear samples to mu-law bytes."""
    return _ENCODE[samples.astype(np.int32) + 32768].tobytes()
