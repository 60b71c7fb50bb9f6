"""Settings of the analytics service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """VOICEBUS_ANALYTICS_HOST and _PORT; the shared VOICEBUS_DATA_DIR and VOICEBUS_DATABASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_ANALYTICS_", extra="ignore", validate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    data_dir: Path = Field(default=Path(".voicebus"), validation_alias="VOICEBUS_DATA_DIR")
    """Where the embedded stack keeps its files; the default SQLite database lives here."""
    database_url: str = Field(
        default="", validation_alias="VOICEBUS_DATABASE_URL", validate_default=True
    )
    """Any SQLAlchemy URL; plain postgresql:// and sqlite:// get their asyncio drivers."""

    @field_validator("database_url")
    @classmethod
    def _default_to_sqlite_in_data_dir(cls, url: str, info: ValidationInfo) -> str:
        if url:
            return url
        return f"sqlite+aiosqlite:///{info.data['data_dir'] / 'voicebus.db'}"
