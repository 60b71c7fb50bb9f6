"""DTMF tones (ITU-T Q.23): pressing keys in-band, for IVRs on the far end of a call.

Twilio's Media Streams cannot send DTMF events, and a web call has no signalling for them, so
voicebus plays the tones as audio: G.711 carries them intact, and every IVR detects them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_LOW_HZ = (697, 770, 852, 941)
_HIGH_HZ = (1209, 1336, 1477, 1633)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (_LOW_HZ[row], _HIGH_HZ[col])
    for row, keys in enumerate(_KEYPAD)
    for col, key in enumerate(keys)
}
"""Each key's (low, high) tone pair in Hz."""
WAIT = "w"
"""Not a key: half a second of silence, as in Twilio's sendDigits."""
WAIT_MS = 500
_AMPLITUDE = 0.35 * 32767
"""Per tone, so the pair peaks at 70 % of full scale: loud enough, never clipped."""
_RAMP_MS = 2
"""Fade in and out, so a tone starts and stops without a click."""


def dtmf_tones(
    digits: str, *, sample_rate: int, tone_ms: int = 100, gap_ms: int = 100
) -> npt.NDArray[np.int16]:
    """Mono PCM16 of `digits` pressed one after another, each tone followed by a gap.

    Raises ValueError naming a character that is neither a key nor `w`.
    """
    pieces: list[npt.NDArray[np.float64]] = []
    gap = np.zeros(sample_rate * gap_ms // 1000)
    for digit in digits:
        if digit == WAIT:
            pieces.append(np.zeros(sample_rate * WAIT_MS // 1000))
            continue
        if digit not in FREQUENCIES:
            raise ValueError(f"{digit!r} is not a DTMF key (0-9, *, #, A-D) nor a wait ('w')")
        low, high = FREQUENCIES[digit]
        t = np.arange(sample_rate * tone_ms // 1000) / sample_rate
        tone = _AMPLITUDE * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
        ramp = min(len(t) // 2, sample_rate * _RAMP_MS // 1000)
        envelope = np.ones(len(t))
        envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
        envelope[len(t) - ramp :] = np.linspace(1.0, 0.0, ramp)
        pieces.extend((tone * envelope, gap))
    if not pieces:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(pieces).round().astype(np.int16)
