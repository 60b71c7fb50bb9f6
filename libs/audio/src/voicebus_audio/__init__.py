"""Audio primitives shared by the services: G.711 mu-law and resampling."""

from voicebus_audio.decode import PartialSampleError, to_mono_pcm16
from voicebus_audio.g711 import mulaw_to_pcm16, pcm16_to_mulaw
from voicebus_audio.resample import Resampler, resample

__all__ = [
    "PartialSampleError",
    "Resampler",
    "mulaw_to_pcm16",
    "pcm16_to_mulaw",
    "resample",
    "to_mono_pcm16",
]
