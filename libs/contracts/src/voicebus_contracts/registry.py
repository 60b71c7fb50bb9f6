"""The call registry record: where a live call's audio must go and in what format."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from voicebus_contracts.audio import AudioFormat
from voicebus_contracts.events import Transport


class CallRoute(BaseModel):
    """Written by the gateway that holds the caller's socket at call start; read by TTS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    gateway_id: str
    transport: Transport
    agent_id: str
    audio_out: AudioFormat
