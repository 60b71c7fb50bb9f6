"""TTS service settings (env prefix VOICEBUS_TTS_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TtsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_TTS_", extra="ignore")

    provider: Literal["espeak", "instant"] = "espeak"
    """espeak: eSpeak NG on this machine. instant: a tone at once, for benchmarks and load
    tests only."""
    instant_ms_per_char: int = Field(default=60, ge=1, le=1_000)
    """How long the instant provider's tone lasts per character of text."""
    voice: str = "en-us"
    """eSpeak NG voice the replies are spoken with."""
    rate_wpm: int = Field(default=175, ge=80, le=450)
    """Speaking rate in words per minute (eSpeak NG accepts 80 to 450)."""
    chunk_ms: int = Field(default=200, ge=20, le=2_000)
    """Audio per published chunk; the first chunk of each sentence goes out as soon as it exists."""
    route_cache_size: int = Field(default=1_024, gt=0)
    """Call routes kept in memory, so the call registry is read once per call."""
    open_replies: int = Field(default=1_024, gt=0)
    """Replies in progress tracked at once; the least recently spoken is forgotten beyond this."""
