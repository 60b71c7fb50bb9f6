"""Where the database is: the shared VOICEBUS_DATABASE_URL, else SQLite in VOICEBUS_DATA_DIR."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings


class DatabaseSettings(BaseSettings):
    """Settings of a service with tables of its own; subclasses add their env prefix."""

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
