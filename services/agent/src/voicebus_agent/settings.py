"""Agent service settings (env prefix VOICEBUS_AGENT_)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voicebus_agent.turns import DEFAULT_BACKCHANNELS, words_of
from voicebus_contracts.agents import LanguageModel


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_AGENT_", extra="ignore", populate_by_name=True
    )

    greeting: str = (
        "Hello! You are talking to the voicebus demo agent of Harbor Light Boat Rentals. "
        "How can I help you today?"
    )
    """What the agent says first, as soon as a call starts."""
    history_ttl_s: int = Field(default=24 * 3600, gt=0)
    """How long a call's conversation history stays in Redis after its last message."""
    backchannel_words: Annotated[tuple[str, ...], NoDecode] = DEFAULT_BACKCHANNELS
    """Words and short phrases that, said over the agent's reply and nothing else, only show the
    caller is listening: the reply resumes (comma-separated in the environment; empty: every
    worded sound interrupts)."""
    backchannel_max_words: int = Field(default=2, ge=1)
    """A backchannel has at most this many words; a longer turn interrupts, whatever its words."""
    backchannel_max_ms: int = Field(default=1200, ge=0)
    """A backchannel lasts at most this long, when the transcript says how long the caller spoke;
    a longer turn interrupts, whatever its words."""
    unfinished_turn_wait_ms: int = Field(default=1000, ge=0)
    """A turn that trails off ("and...", "so I want to") is answered only after the caller has
    stayed quiet this much longer; if they speak again, their next words join it."""
    dtmf_timeout_ms: int = Field(default=2000, gt=0)
    """Keys typed without `#` are submitted as the caller's turn after this pause in the typing."""
    llm_model: str | None = None
    """The chat model that answers callers (any OpenAI-compatible endpoint); unset, the agent
    answers offline, without a model (see `offline`)."""
    offline: Literal["demo", "echo"] = "demo"
    """Without a model: `demo` answers as the demo agent (its intents, then its knowledge base);
    `echo` repeats what it heard, to check the speech path (tests and benchmarks)."""
    llm_base_url: str | None = None
    """The endpoint's base URL (vLLM, Ollama, llama.cpp server...); unset, OpenAI's."""
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("VOICEBUS_AGENT_LLM_API_KEY", "OPENAI_API_KEY")
    )
    """The endpoint's key (OPENAI_API_KEY also works); required for OpenAI's own endpoint."""
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_timeout_s: float = Field(default=8.0, gt=0)
    """How long the model may keep the caller waiting, for its answer to begin or between its
    pieces, before the request is retried (the SDK's default is 10 minutes)."""
    llm_retries: int = Field(default=1, ge=0, le=5)
    """Retries of a model request that timed out or failed (the SDK waits about 0.5 s, doubled,
    before each); then the caller hears an apology and the call goes on."""
    realtime_base_url: str | None = None
    """The endpoint of realtime agents' speech-to-speech models (OpenAI Realtime's protocol);
    unset, OpenAI's."""
    realtime_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("VOICEBUS_AGENT_REALTIME_API_KEY", "OPENAI_API_KEY"),
    )
    """That endpoint's key (OPENAI_API_KEY also works); required for OpenAI's own."""
    system_prompt: str = (
        "You are a friendly voice assistant on a phone call. Your words are spoken aloud: answer "
        "in one to three short sentences of plain text, with no lists, markup or emoji."
    )
    filler: str = "One moment, please."
    """Said when a tool takes longer than filler_after_ms; empty: say nothing."""
    filler_after_ms: int = Field(default=1000, ge=0)

    def service_model(self) -> LanguageModel | None:
        """The model VOICEBUS_AGENT_LLM_* name, if one is set."""
        if not self.llm_model:
            return None
        return LanguageModel(
            model=self.llm_model, base_url=self.llm_base_url, temperature=self.llm_temperature
        )

    @property
    def answers_as_demo(self) -> bool:
        """No model: the offline demo agent answers (unless the echo was asked for)."""
        return not self.llm_model and self.offline == "demo"

    @model_validator(mode="after")
    def _llm_has_a_key(self) -> Self:
        if self.llm_model and self.llm_base_url is None and self.llm_api_key is None:
            raise ValueError(
                "VOICEBUS_AGENT_LLM_MODEL is set for OpenAI's endpoint but OPENAI_API_KEY "
                "(or VOICEBUS_AGENT_LLM_API_KEY) is not: set the key, or "
                "VOICEBUS_AGENT_LLM_BASE_URL for another endpoint"
            )
        return self

    @field_validator("backchannel_words", mode="before")
    @classmethod
    def _split_backchannels(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(phrase.strip() for phrase in value.split(",") if phrase.strip())
        return value

    @field_validator("backchannel_words")
    @classmethod
    def _backchannels_have_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if wordless := [phrase for phrase in value if not words_of(phrase)]:
            raise ValueError(f"a backchannel is made of words, got {wordless!r}")
        return value
