"""TTS service settings (env prefix VOICEBUS_TTS_)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus_runtime.settings import choice_of

Provider = Literal["espeak", "instant"]


class TtsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_TTS_", extra="ignore")

    provider: Provider = "espeak"
    """espeak: eSpeak NG on this machine. instant: a quiet tone as long as the text would take
    to say, at once and without any engine; for benchmarks and load tests only, never for real
    calls."""
    instant_ms_per_char: int = Field(default=60, ge=1, le=1_000)
    """How long the instant provider's tone lasts per character of text (60 is about eSpeak NG
    at 175 words per minute); a text chunk's tone never lasts more than 10 s."""
    voice: str = "en-us"
    """eSpeak NG voice the replies are spoken with."""
    rate_wpm: int = Field(default=175, ge=80, le=450)
    """Speaking rate in words per minute (eSpeak NG accepts 80 to 450)."""
    chunk_ms: int = Field(default=200, ge=20, le=2_000)
    """Audio per published chunk; the first chunk of each sentence goes out as soon as it exists."""
    route_cache_size: int = Field(default=1_024, gt=0)
    """Call routes kept in memory, so the call registry is read once per call."""

    @field_validator("provider", mode="before")
    @classmethod
    def _known_provider(cls, value: object) -> object:
        return choice_of(value, get_args(Provider), variable="VOICEBUS_TTS_PROVIDER")
