"""Settings of the analytics service."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from voicebus_contracts.agents import LanguageModel
from voicebus_sql.settings import DatabaseSettings


class Settings(DatabaseSettings):
    """VOICEBUS_ANALYTICS_HOST, _PORT, _WEBHOOK_* and _LLM_*; the shared VOICEBUS_DATA_DIR and
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

    llm_model: str | None = None
    """The chat model (any OpenAI-compatible endpoint) that draws the post-call results of
    calls whose agent names no model of its own; unset, those are drawn offline."""
    llm_base_url: str | None = None
    """The endpoint's base URL (vLLM, Ollama, llama.cpp server...); unset, OpenAI's."""
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VOICEBUS_ANALYTICS_LLM_API_KEY", "OPENAI_API_KEY"),
    )
    """The endpoint's key (OPENAI_API_KEY also works); required for OpenAI's own endpoint."""
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """A judgement, not a conversation: the same call should conclude the same way."""
    llm_timeout_s: float = Field(default=60.0, gt=0)
    """How long the model may take to answer (once retried); then the results are drawn
    offline."""

    @property
    def recordings(self) -> Path:
        return self.recordings_dir or self.data_dir / "recordings"

    def service_model(self) -> LanguageModel | None:
        """The model VOICEBUS_ANALYTICS_LLM_* name, if one is set."""
        if not self.llm_model:
            return None
        return LanguageModel(
            model=self.llm_model, base_url=self.llm_base_url, temperature=self.llm_temperature
        )

    @model_validator(mode="after")
    def _llm_has_a_key(self) -> Self:
        if self.llm_model and self.llm_base_url is None and self.llm_api_key is None:
            raise ValueError(
                "VOICEBUS_ANALYTICS_LLM_MODEL is set for OpenAI's endpoint but OPENAI_API_KEY "
                "(or VOICEBUS_ANALYTICS_LLM_API_KEY) is not: set the key, or "
                "VOICEBUS_ANALYTICS_LLM_BASE_URL for another endpoint"
            )
        return self
