"""Audio formats: every piece of audio on the bus says what it is, nothing is guessed."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

AudioEncoding = Literal["mulaw", "pcm16"]
"""G.711 mu-law (one byte per sample) or signed 16-bit little-endian PCM."""


class AudioFormat(BaseModel):
    """Encoding, sample rate and channel count of a piece of audio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoding: AudioEncoding
    sample_rate: int = Field(gt=0, le=48_000)
    channels: int = Field(default=1, ge=1, le=2)

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.encoding == "mulaw" else 2

    def duration_ms(self, num_bytes: int) -> float:
        """How long `num_bytes` of this format play, in milliseconds."""
        frame_bytes = self.bytes_per_sample * self.channels
        return 1000.0 * (num_bytes // frame_bytes) / self.sample_rate


TELEPHONE = AudioFormat(encoding="mulaw", sample_rate=8_000)
"""What Twilio Media Streams carry both ways: mu-law, 8 kHz, mono."""

SPEECH_16K = AudioFormat(encoding="pcm16", sample_rate=16_000)
"""What VAD and speech recognition work on: PCM16, 16 kHz, mono."""


def _from_base64(value: object) -> object:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


AudioBytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda raw: base64.b64encode(raw).decode("ascii"), when_used="json"),
]
"""Raw audio in Python, standard base64 in JSON; either is accepted, so any decoder reads it."""
