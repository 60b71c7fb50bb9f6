"""Settings of the analytics service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus_sql.settings import DatabaseSettings


class Settings(DatabaseSettings):
    """VOICEBUS_ANALYTICS_HOST, _PORT and _WEBHOOK_*; the shared VOICEBUS_DATA_DIR and
    VOICEBUS_DATABASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_ANALYTICS_", extra="ignore", validate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    recordings_dir: Path | None = Field(default=None, validation_alias="VOICEBUS_RECORDINGS_DIR")
    """Where the gateway writes the calls' recordings (the same directory, shared); unset:
    `<VOICEBUS_DATA_DIR>/recordings`, as the gateway's default."""

    webhook_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts to deliver an ended call to its agent's webhook (network errors, 5xx, 429)."""
    webhook_backoff_s: float = Field(default=1.0, ge=0)
    """Wait before the first retry, doubled before each next one (1, 2, 4, 8 s)."""
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    """How long one attempt waits for the receiver's answer."""

    @property
    def recordings(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"
