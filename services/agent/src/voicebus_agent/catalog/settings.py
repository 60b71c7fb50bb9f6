"""Settings of what the agent service keeps: agents (SQL), knowledge bases (Qdrant), and where
its API listens."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from qdrant_client import AsyncQdrantClient

from voicebus_sql.settings import DatabaseSettings


class CatalogSettings(DatabaseSettings):
    """VOICEBUS_AGENT_API_HOST, _API_PORT, _QDRANT_URL and _QDRANT_API_KEY; the shared
    VOICEBUS_DATA_DIR and VOICEBUS_DATABASE_URL."""

    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_AGENT_", extra="ignore", validate_by_name=True
    )

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8082, ge=1, le=65535)
    qdrant_url: str | None = None
    """A Qdrant server (production, and several agent processes); unset: Qdrant's local mode
    in VOICEBUS_DATA_DIR/qdrant, which one process at a time can open."""
    qdrant_api_key: SecretStr | None = None

    def qdrant(self) -> AsyncQdrantClient:
        """A client of the configured Qdrant."""
        if self.qdrant_url:
            key = self.qdrant_api_key
            api_key = None if key is None else key.get_secret_value()
            return AsyncQdrantClient(url=self.qdrant_url, api_key=api_key)
        return AsyncQdrantClient(path=str(self.data_dir / "qdrant"))
