"""Settings of the analytics service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus_sql.settings import DatabaseSettings


class Settings(DatabaseSettings):
    """VOICEBUS_ANALYTICS_HOST and _PORT; the shared VOICEBUS_DATA_DIR and VOICEBUS_DATABASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_ANALYTICS_", extra="ignore", validate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    recordings_dir: Path | None = Field(default=None, validation_alias="VOICEBUS_RECORDINGS_DIR")
    """Where the gateway writes the calls' recordings (the same directory, shared); unset:
    `<VOICEBUS_DATA_DIR>/recordings`, as the gateway's default."""

    @property
    def recordings(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"
