"""Agent service settings (env prefix VOICEBUS_AGENT_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_AGENT_", extra="ignore")

    greeting: str = "Hello! You are talking to the voicebus demo agent. How can I help you today?"
    """What the agent says first, as soon as a call starts."""
    history_ttl_s: int = Field(default=24 * 3600, gt=0)
    """How long a call's conversation history stays in Redis after its last message."""
