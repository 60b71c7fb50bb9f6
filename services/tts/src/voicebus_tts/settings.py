"""TTS service settings (env prefix VOICEBUS_TTS_; the providers' keys under their own names)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus_runtime.settings import choice_of

Provider = Literal["espeak", "cartesia", "openai", "deepgram", "instant"]
CloudProvider = Literal["cartesia", "openai", "deepgram"]
KEY_VARIABLES: dict[CloudProvider, str] = {
    "cartesia": "CARTESIA_API_KEY",
    "openai": "OPENAI_API_KEY",
    "deepgram": "DEEPGRAM_API_KEY",
}


def _key(variable: str) -> SecretStr | None:
    return Field(default=None, validation_alias=AliasChoices(variable, variable.lower()))


class TtsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBUS_TTS_", extra="ignore")

    provider: Provider = "espeak"
    """Who speaks replies whose agent chooses no one: espeak (eSpeak NG on this machine),
    cartesia, openai or deepgram (their streaming APIs, each offered to agents wherever its key
    is set), or instant: a quiet tone as long as the text would take to say, at once and
    without any engine; for benchmarks and load tests only, never for real calls."""
    instant_ms_per_char: int = Field(default=60, ge=1, le=1_000)
    """How long the instant provider's tone lasts per character of text (60 is about eSpeak NG
    at 175 words per minute); a text chunk's tone never lasts more than 10 s."""
    voice: str = "en-us"
    """eSpeak NG voice the replies are spoken with (unless their agent names one)."""
    language: str = "en-us"
    """The language replies are in, unless their agent's STT language says otherwise: numbers,
    dates, times, money, emails and the like are written out for it (English only, so far;
    the region decides how numeric dates read: en-gb reads 3/4 as the third of April)."""
    rate_wpm: int = Field(default=175, ge=80, le=450)
    """Speaking rate in words per minute (eSpeak NG accepts 80 to 450)."""
    cartesia_api_key: SecretStr | None = _key("CARTESIA_API_KEY")
    cartesia_voice: str = "a0e99841-438c-4a64-b679-ae501e7d6091"
    """Cartesia voice id for agents that name none (the one Cartesia's SDK examples use)."""
    cartesia_model: str = "sonic-3.5"
    cartesia_url: str | None = None
    """Cartesia's API base URL; unset, Cartesia's own (a local fake in tests)."""
    openai_api_key: SecretStr | None = _key("OPENAI_API_KEY")
    openai_voice: str = "alloy"
    openai_model: str = "gpt-4o-mini-tts"
    openai_url: str | None = None
    deepgram_api_key: SecretStr | None = _key("DEEPGRAM_API_KEY")
    deepgram_voice: str = "aura-2-thalia-en"
    """The Aura model that speaks, for agents that name none."""
    deepgram_url: str | None = None
    chunk_ms: int = Field(default=200, ge=20, le=2_000)
    """Audio per published chunk; the first chunk of each sentence goes out as soon as it exists."""
    route_cache_size: int = Field(default=1_024, gt=0)
    """Call routes kept in memory, so the call registry is read once per call."""
    phrase_cache_size: int = Field(default=256, ge=0)
    """Phrases whose speech is kept (greetings, fillers), by provider, voice and text; 0: none."""
    phrase_max_chars: int = Field(default=200, gt=0)
    """Only sentences this short are kept: the ones that repeat."""

    def api_key(self, provider: CloudProvider) -> str | None:
        key: SecretStr | None = getattr(self, f"{provider}_api_key")
        return key.get_secret_value() if key and key.get_secret_value() else None

    @field_validator("provider", mode="before")
    @classmethod
    def _known_provider(cls, value: object) -> object:
        return choice_of(value, get_args(Provider), variable="VOICEBUS_TTS_PROVIDER")

    @model_validator(mode="after")
    def _the_provider_has_its_key(self) -> TtsSettings:
        provider = self.provider
        if provider in KEY_VARIABLES and not self.api_key(provider):
            variable = KEY_VARIABLES[provider]
            raise ValueError(f"{variable} must be set when VOICEBUS_TTS_PROVIDER is {provider}")
        return self
