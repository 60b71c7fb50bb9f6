"""Any audio the contracts allow, as mono 16-bit samples, and back."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebus_audio.g711 import mulaw_to_pcm16, pcm16_to_mulaw
from voicebus_contracts import AudioFormat


class PartialSampleError(ValueError):
    """The audio's length is not a whole number of sample frames of its format."""


def to_mono_pcm16(audio: bytes, fmt: AudioFormat) -> npt.NDArray[np.int16]:
    """Decode mu-law or PCM16 audio of `fmt` to mono PCM16 at the same rate."""
    if len(audio) % (fmt.bytes_per_sample * fmt.channels):
        raise PartialSampleError(f"{len(audio)} bytes are not whole {fmt.encoding} samples")
    samples = (
        mulaw_to_pcm16(audio)
        if fmt.encoding == "mulaw"
        else np.frombuffer(audio, dtype="<i2").astype(np.int16, copy=False)
    )
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).mean(axis=1).astype(np.int16)
    return samples


def from_mono_pcm16(samples: npt.NDArray[np.int16], fmt: AudioFormat) -> bytes:
    """Mono PCM16 samples, already at `fmt`'s rate, as `fmt`'s bytes."""
    if fmt.channels > 1:
        samples = np.repeat(samples, fmt.channels)
    if fmt.encoding == "mulaw":
        return pcm16_to_mulaw(samples)
    return samples.astype("<i2", copy=False).tobytes()
