"""Audio primitives shared by the services: G.711 mu-law, resampling, DTMF tones."""

from voicebus_audio.decode import PartialSampleError, from_mono_pcm16, to_mono_pcm16
from voicebus_audio.dtmf import dtmf_tones
from voicebus_audio.g711 import mulaw_to_pcm16, pcm16_to_mulaw
from voicebus_audio.resample import Resampler, resample

__all__ = [
    "PartialSampleError",
    "Resampler",
    "dtmf_tones",
    "from_mono_pcm16",
    "mulaw_to_pcm16",
    "pcm16_to_mulaw",
    "resample",
    "to_mono_pcm16",
]
