"""Settings of the agent catalog: its database and where its API listens."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus_sql.settings import DatabaseSettings


class CatalogSettings(DatabaseSettings):
    """VOICEBUS_AGENT_API_HOST and _API_PORT; the shared VOICEBUS_DATA_DIR and
    VOICEBUS_DATABASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_AGENT_", extra="ignore", validate_by_name=True
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8082, ge=1, le=65535)
