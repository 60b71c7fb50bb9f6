"""What an agent is: the configuration every service reads of the agent a call talks to, and the
events that announce it on `voicebus.agents`.

The agent service stores agents (SQL) and serves their API; every change, and every agent when
the service starts, goes out as `AgentConfigured` or `AgentRemoved`, keyed by agent id, so each
service keeps the catalog it needs in memory (`voicebus_runtime.agents.AgentDirectory`).
A setting left unset (None) means the reading service's own default.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from voicebus_contracts.events import E164_PATTERN, MAX_VARIABLES, Event, Pipeline

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
    provider: Literal["espeak", "cartesia", "openai", "deepgram"] | None = None
    """Who speaks the agent's replies; None: the TTS service's configured provider. The cloud
    ones are offered where the TTS service has their key."""
    voice: str | None = Field(default=None, max_length=128)
    """The provider's voice: an eSpeak NG voice ("en-us"), a Cartesia voice id, an OpenAI
    voice name ("alloy"), a Deepgram Aura model ("aura-2-thalia-en"); None: the service's."""


class LanguageModel(_Section):
    """An OpenAI-compatible chat model."""

    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=2_000)
    """Unset: OpenAI's endpoint (which needs OPENAI_API_KEY in the agent service)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    api_key_secret: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN)
    """The secret (see SECRET_ENV_PREFIX) holding the key of an endpoint of the agent's own;
    the service's key goes to the service's endpoint only."""


class RealtimeTurnDetection(_Section):
    """How the speech-to-speech model tells that the caller's turn is over (OpenAI Realtime's
    turn detection)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    """server_vad: after `silence_duration_ms` of silence; semantic_vad: when what the caller
    said sounds finished, as eager as `eagerness`."""
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """server_vad: how loud sound must be to count as speech."""
    prefix_padding_ms: int = Field(default=300, ge=0, le=2_000)
    """server_vad: audio kept from before the speech was heard."""
    silence_duration_ms: int = Field(default=500, ge=100, le=10_000)
    """server_vad: silence that ends the caller's turn."""
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    """semantic_vad: how soon the model answers."""


class RealtimeModel(_Section):
    """A speech-to-speech model (pipeline "realtime"): it hears the caller, answers in its own
    voice, calls the agent's tools; voicebus transcribes nothing and synthesizes nothing."""

    provider: Literal["openai"] = "openai"
    model: str = Field(default="gpt-realtime", min_length=1, max_length=200)
    voice: str = Field(default="alloy", min_length=1, max_length=128)
    instructions: str | None = Field(default=None, max_length=20_000)
    """None: the agent's system prompt."""
    transcription_model: str = Field(default="gpt-4o-mini-transcribe", min_length=1, max_length=200)
    """Transcribes the caller for the record (the model hears the audio itself)."""
    turn_detection: RealtimeTurnDetection = RealtimeTurnDetection()
    base_url: str | None = Field(default=None, max_length=2_000)
    """Unset: the agent service's VOICEBUS_AGENT_REALTIME_BASE_URL, else OpenAI's endpoint."""
    api_key_secret: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN)
    """As `LanguageModel.api_key_secret`; unset: the service's key (OPENAI_API_KEY)."""


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


VARIABLE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
NODE_ID_PATTERN = AGENT_ID_PATTERN
MAX_WORKFLOW_NODES = 50


class Variable(_Section):
    """A value a workflow node collects from the caller; it lands in the call record."""

    name: Annotated[str, StringConstraints(pattern=VARIABLE_NAME_PATTERN)]
    description: str = Field(min_length=1, max_length=500)
    """What it is, for the model (and for the question asked when there is no `ask`)."""
    kind: Literal["text", "number", "date"] = "text"
    """number: a count or amount; date: a day (a weekday, "tomorrow", "June 3rd"); text: the
    caller's words when asked for it."""
    choices: tuple[str, ...] = Field(default=(), max_length=32)
    """The values it may take; empty: any."""
    ask: str | None = Field(default=None, max_length=500)
    """The question that asks for it; None: one made from the description."""


class Transition(_Section):
    """A way out of a workflow node, taken on the caller's words or on the collected data.

    Caller-driven: `when` describes when to take it (a language model decides), `examples` are
    things callers say to take it (the offline agent matches them by meaning). Data-driven:
    `once_collected` (every variable of the node is known) and/or `if_equals` (variables hold
    these values), checked by code whenever variables change and when the node is entered."""

    to: Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
    when: str | None = Field(default=None, max_length=500)
    examples: tuple[Annotated[str, StringConstraints(max_length=200)], ...] = Field(
        default=(), max_length=32
    )
    once_collected: bool = False
    if_equals: dict[str, str] = Field(default_factory=dict, max_length=16)

    @property
    def data_driven(self) -> bool:
        return self.once_collected or bool(self.if_equals)

    @model_validator(mode="after")
    def _one_kind_of_condition(self) -> Transition:
        caller_driven = self.when is not None or bool(self.examples)
        if caller_driven == self.data_driven:
            raise ValueError(
                f"transition to {self.to!r}: give either `when`/`examples` (the caller's words) "
                "or `once_collected`/`if_equals` (the collected data), not both or neither"
            )
        return self


class WorkflowNode(_Section):
    """One step of a conversation: what the agent says on arriving, what it is told to do, the
    variables it collects, the tools it may use, and where it may go next."""

    id: Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
    say: str | None = Field(default=None, max_length=2_000)
    """Said on arriving at the node (told to a model, spoken as is offline); `{name}` is
    replaced by the variable's value."""
    instructions: str | None = Field(default=None, max_length=10_000)
    """The model's task at this step, added to the agent's system prompt."""
    collect: tuple[Variable, ...] = Field(default=(), max_length=16)
    tools: tuple[str, ...] | None = None
    """The tools the model may use here (built-in or the agent's); None: all of them."""
    transitions: tuple[Transition, ...] = Field(default=(), max_length=32)
    """Checked in order: the first that holds is taken."""
    end_call: bool = False
    """The call ends once the caller has heard what is said here."""

    @model_validator(mode="after")
    def _final_nodes_go_nowhere(self) -> WorkflowNode:
        if self.end_call and self.transitions:
            raise ValueError(f"node {self.id!r} ends the call: it can have no transitions")
        return self


class Workflow(_Section):
    """A conversation as a graph of nodes, like Pipecat Flows or Retell's conversation flow;
    the call is at one node at a time, starting at `start` (entered silently: the greeting is
    what the caller hears first)."""

    start: Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
    nodes: tuple[WorkflowNode, ...] = Field(min_length=1, max_length=MAX_WORKFLOW_NODES)

    def node(self, node_id: str) -> WorkflowNode:
        return next(node for node in self.nodes if node.id == node_id)

    @model_validator(mode="after")
    def _a_connected_graph(self) -> Workflow:
        ids = [node.id for node in self.nodes]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"node ids must be unique: {twice}")
        if self.start not in ids:
            raise ValueError(f"the start node {self.start!r} is not one of the nodes")
        collected = {v.name for node in self.nodes for v in node.collect}
        for node in self.nodes:
            for transition in node.transitions:
                if transition.to not in ids:
                    raise ValueError(
                        f"node {node.id!r} has a transition to {transition.to!r}, "
                        "which is not one of the nodes"
                    )
                if unknown := sorted(set(transition.if_equals) - collected):
                    raise ValueError(
                        f"node {node.id!r}: a transition tests {unknown}, which no node collects"
                    )
        return self


class Voicemail(_Section):
    """Outbound calls: whether the carrier listens for an answering machine before the agent
    speaks, and what the agent does when one answers."""

    detect: bool = False
    message: str | None = Field(default=None, max_length=2_000)
    """Left after the machine's greeting; None: hang up without a message."""
    decision_timeout_ms: int = Field(default=10_000, ge=1_000, le=60_000)
    """How long the greeting waits for the decision; then the agent greets anyway."""


class PostCall(_Section):
    """What happens once a call of the agent is over: what is drawn from it, and who is told."""

    extraction: dict[str, Any] | None = None
    """A JSON schema (an object with properties) of the facts to draw from the call; they land
    on the call record."""
    success: str | None = Field(default=None, max_length=2_000)
    """What a successful call achieves, in words, for the evaluation on the call record."""
    webhook_url: str | None = Field(default=None, pattern=r"^https?://", max_length=2_000)
    """Told of every ended call (its record, summary and extraction), signed with HMAC."""
    webhook_secret: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN)
    """The secret (see SECRET_ENV_PREFIX) that signs the webhook, in analytics' environment."""


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
    workflow: Workflow | None = None
    voicemail: Voicemail = Voicemail()
    recording: bool = True
    """Each call is recorded as a stereo WAV (the caller left, the agent right); False: none."""
    post_call: PostCall = PostCall()
    pipeline: Pipeline = "cascaded"
    """cascaded: `stt`, `llm` and `tts`; realtime: `realtime`, which then does all three."""
    realtime: RealtimeModel = RealtimeModel()

    @field_validator("tools")
    @classmethod
    def _tools_named_once(cls, tools: tuple[HttpTool, ...]) -> tuple[HttpTool, ...]:
        names = [tool.name for tool in tools]
        twice = {name for name in names if names.count(name) > 1}
        if clash := sorted(twice | (set(names) & BUILT_IN_TOOLS)):
            raise ValueError(f"tool names must be unique and not a built-in's: {clash}")
        return tools

    @model_validator(mode="after")
    def _workflow_tools_exist(self) -> AgentSpec:
        if self.workflow is None:
            return self
        known = BUILT_IN_TOOLS | {tool.name for tool in self.tools}
        for node in self.workflow.nodes:
            if unknown := sorted(set(node.tools or ()) - known):
                raise ValueError(
                    f"workflow node {node.id!r} uses tools the agent does not have: {unknown}"
                )
        return self


class AgentConfigured(Event):
    """An agent was created or changed (or is announced again): this is all of it now."""

    schema_version: ClassVar[int] = 3
    type: Literal["agent.configured"] = "agent.configured"
    agent: AgentSpec


class AgentRemoved(Event):
    type: Literal["agent.removed"] = "agent.removed"
    agent_id: str


AgentEvent = Annotated[AgentConfigured | AgentRemoved, Field(discriminator="type")]
