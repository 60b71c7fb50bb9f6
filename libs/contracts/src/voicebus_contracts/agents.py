"""What an agent is: the configuration every service reads of the agent a call talks to, and the
events that announce it on `voicebus.agents`.

The agent service stores agents (SQL) and serves their API; every change, and every agent when
the service starts, goes out as `AgentConfigured` or `AgentRemoved`, keyed by agent id, so each
service keeps the catalog it needs in memory (`voicebus_runtime.agents.AgentDirectory`).
A setting left unset (None) means the reading service's own default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from voicebus_contracts.events import E164_PATTERN, MAX_VARIABLES, Event

AGENT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Lower-case letters, digits, '-' and '_', up to 63 characters: safe in URLs and logs."""
DEFAULT_AGENT_ID = "default"

PhoneNumber = Annotated[str, StringConstraints(pattern=E164_PATTERN)]

TOOL_NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"
"""What chat-completions APIs accept as a function name."""
BUILT_IN_TOOLS = frozenset({"end_call", "transfer_call", "send_dtmf", "search_knowledge_base"})
SECRET_REFERENCE = r"\{\{secret:([A-Z][A-Z0-9_]*)\}\}"
SECRET_ENV_PREFIX = "VOICEBUS_SECRET_"
"""A secret named CRM_TOKEN (`{{secret:CRM_TOKEN}}` in a tool's header, `api_key_secret` of a
model) is the agent service's environment variable VOICEBUS_SECRET_CRM_TOKEN, read when used.
Secrets are never stored with the agent, and only variables meant to be named can be (not the
service's own keys)."""
SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TurnTaking(_Section):
    """When the caller's turn is over, and what does not interrupt the agent."""

    end_of_turn_silence_ms: int | None = Field(default=None, ge=100, le=10_000)
    """Silence after the caller's last word that ends their turn (media)."""
    unfinished_turn_wait_ms: int | None = Field(default=None, ge=0, le=10_000)
    """How much longer a turn that trails off ("and...") waits for more (agent)."""
    backchannel_words: tuple[str, ...] | None = None
    """What the caller may say over the agent without interrupting it (agent)."""


class SpeechToText(_Section):
    provider: Literal["whisper", "deepgram"] | None = None
    """Who transcribes the caller; None: the STT service's configured provider."""
    language: str | None = Field(default=None, max_length=16)


class TextToSpeech(_Section):
    provider: Literal["espeak"] | None = None
    voice: str | None = Field(default=None, max_length=64)


class LanguageModel(_Section):
    """An OpenAI-compatible chat model."""

    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=2_000)
    """Unset: OpenAI's endpoint (which needs OPENAI_API_KEY in the agent service)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    api_key_secret: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN)
    """The secret (see SECRET_ENV_PREFIX) holding the key of an endpoint of the agent's own;
    the service's key goes to the service's endpoint only."""


class HttpTool(_Section):
    """A tool the model may call that is an HTTP endpoint: GET sends the arguments as the query,
    other methods as a JSON body; the response body goes back to the model."""

    name: Annotated[str, StringConstraints(pattern=TOOL_NAME_PATTERN)]
    description: str = Field(min_length=1, max_length=1_000)
    url: str = Field(pattern=r"^https?://", max_length=2_000)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """The arguments' JSON schema, as the model is shown it."""
    headers: dict[str, str] = Field(default_factory=dict, max_length=32)
    """Sent with each call; values may hold `{{secret:NAME}}` references."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class KnowledgeBaseUse(_Section):
    """The knowledge base an agent answers from (uploaded through the agent service's API)."""

    id: Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
    top_k: int = Field(default=3, ge=1, le=10)
    """Passages retrieved per search."""
    auto_context: bool = False
    """Besides offering the search tool, put the passages nearest to each caller turn in the
    model's instructions."""


class AgentSpec(_Section):
    """One agent, as stored and as announced."""

    agent_id: Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
    name: str = Field(min_length=1, max_length=200)
    greeting: str | None = Field(default=None, max_length=2_000)
    """What the agent says first; None: the agent service's default greeting."""
    system_prompt: str | None = Field(default=None, max_length=20_000)
    llm: LanguageModel | None = None
    """None: the agent service's configured model, or its offline responder."""
    stt: SpeechToText = SpeechToText()
    tts: TextToSpeech = TextToSpeech()
    turn_taking: TurnTaking = TurnTaking()
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)
    """Defaults for the call variables a call may set (outbound calls, campaigns)."""
    phone_numbers: tuple[PhoneNumber, ...] = ()
    """The numbers that, called, reach this agent."""
    tools: tuple[HttpTool, ...] = Field(default=(), max_length=32)
    """HTTP tools the model may call, beside the built-in ones."""
    knowledge_base: KnowledgeBaseUse | None = None

    @field_validator("tools")
    @classmethod
    def _tools_named_once(cls, tools: tuple[HttpTool, ...]) -> tuple[HttpTool, ...]:
        names = [tool.name for tool in tools]
        twice = {name for name in names if names.count(name) > 1}
        if clash := sorted(twice | (set(names) & BUILT_IN_TOOLS)):
            raise ValueError(f"tool names must be unique and not a built-in's: {clash}")
        return tools


class AgentConfigured(Event):
    """An agent was created or changed (or is announced again): this is all of it now."""

    type: Literal["agent.configured"] = "agent.configured"
    agent: AgentSpec


class AgentRemoved(Event):
    type: Literal["agent.removed"] = "agent.removed"
    agent_id: str


AgentEvent = Annotated[AgentConfigured | AgentRemoved, Field(discriminator="type")]
