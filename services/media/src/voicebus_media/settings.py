"""Media service settings (env prefix VOICEBUS_MEDIA_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus_contracts.agents import TurnTaking


class MediaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_MEDIA_", extra="ignore")

    speech_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    """VAD speech probability at or above which a window starts (or may start) a turn."""
    silence_threshold: float = Field(default=0.35, gt=0.0, lt=1.0)
    """Once speech has started, a window counts as silence only below this (hysteresis)."""
    min_speech_ms: int = Field(default=200, ge=0, le=2_000)
    """Speech must last this long before a turn starts; shorter blips are ignored."""
    onset_gap_ms: int = Field(default=100, gt=0, le=1_000)
    """Before a turn is confirmed, a pause this long means what came before was a blip.

    Speech onsets waver around the threshold (a plosive, a soft first syllable): shorter dips
    must not restart the onset, or the turn's first word is lost."""
    end_of_turn_silence_ms: int = Field(default=500, gt=0, le=10_000)
    """Silence after the caller's last speech that ends the turn."""
    early_transcript_silence_ms: int = Field(default=200, gt=0, le=10_000)
    """Silence after speech at which the turn's audio so far goes to speech recognition, to be
    transcribed while the rest of the end-of-turn silence runs (if the caller goes on, the
    transcript is redone). At or above end_of_turn_silence_ms, nothing is sent early."""
    partial_interval_ms: int = Field(default=1000, ge=0, le=10_000)
    """While the caller speaks, their audio goes to speech recognition this often, for partial
    transcripts; 0 sends none."""
    preroll_ms: int = Field(default=500, ge=0, le=2_000)
    """Audio kept from before the detected speech start, so the utterance keeps its onset. The
    onset of a soft first syllable is sometimes confirmed 300-400 ms into it: with 200 ms kept,
    the utterance then began mid-word, and Whisper heard "Please book a table..." as "I'll see
    you in the next video." in one frame alignment out of five."""
    trailing_silence_ms: int = Field(default=200, ge=0)
    """Silence after the last speech included at the end of the utterance."""
    idle_call_timeout_s: float = Field(default=120.0, gt=0.0)
    """A call without frames for this long is forgotten even if its CallEnded never arrived."""

    def for_agent(self, turn_taking: TurnTaking) -> MediaSettings:
        """These settings with an agent's own end-of-turn silence, where it sets one (the
        trailing silence kept is shortened to fit a shorter window)."""
        silence_ms = turn_taking.end_of_turn_silence_ms
        if silence_ms is None:
            return self
        return self.model_copy(
            update={
                "end_of_turn_silence_ms": silence_ms,
                "trailing_silence_ms": min(self.trailing_silence_ms, silence_ms),
            }
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.silence_threshold > self.speech_threshold:
            raise ValueError("silence_threshold must not exceed speech_threshold")
        if self.trailing_silence_ms > self.end_of_turn_silence_ms:
            raise ValueError("trailing_silence_ms must not exceed end_of_turn_silence_ms")
        return self
