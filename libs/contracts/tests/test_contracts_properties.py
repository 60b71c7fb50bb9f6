"""Properties of the contracts, for any value they allow and any bytes a topic could carry:
every event survives its envelope's JSON, and a decoder refuses anything else with a
ValidationError (which a consumer dead-letters), never another exception.

Values are drawn from the models' own field constraints (lengths, bounds, patterns), so a
constraint added later is followed; agents, whose validators tie fields together (a workflow's
graph, unique tool names), are drawn by hand. Examples are bounded by the workspace's
Hypothesis profile (conftest.py at the root)."""

from __future__ import annotations

import contextlib
import json
import math
import types
import typing
from typing import Any, TypeVar, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from voicebus_contracts import (
    TELEPHONE,
    CallEvent,
    Envelope,
    FinalTranscript,
    GatewayEvent,
    InboundAudioFrame,
    PartialTranscript,
    PlaybackEvent,
    ReplyEvent,
    ServiceHeartbeat,
    SpeechEvent,
    StageStamps,
    ToolEvent,
    UtteranceEvent,
    envelope,
)
from voicebus_contracts.agents import (
    BUILT_IN_TOOLS,
    NODE_ID_PATTERN,
    AgentConfigured,
    AgentEvent,
    AgentSpec,
    HttpTool,
    KnowledgeBaseUse,
    LanguageModel,
    PostCall,
    SpeechToText,
    TextToSpeech,
    Transition,
    TurnTaking,
    Variable,
    Voicemail,
    Workflow,
    WorkflowNode,
)
from voicebus_contracts.events import E164_PATTERN, Event

TOPIC_EVENTS: tuple[Any, ...] = (
    CallEvent,
    InboundAudioFrame,
    SpeechEvent,
    UtteranceEvent,
    FinalTranscript,
    PartialTranscript,
    ToolEvent,
    ReplyEvent,
    GatewayEvent,
    PlaybackEvent,
    ServiceHeartbeat,
    AgentEvent,
)
"""What each topic carries (see `topics`): the type its consumers decode envelopes as."""


def kinds_on(topic_event: Any) -> tuple[type[Event], ...]:
    """The event classes a topic's type admits: itself, or the members of its union."""
    if get_origin(topic_event) is typing.Annotated:
        topic_event = get_args(topic_event)[0]
    return get_args(topic_event) or (topic_event,)


DECODERS: dict[type[Event], TypeAdapter[Envelope[Any]]] = {
    kind: TypeAdapter(Envelope[topic_event])  # type: ignore[valid-type]
    for topic_event in TOPIC_EVENTS
    for kind in kinds_on(topic_event)
}
"""Each event class's decoder: the envelope of the topic it travels on."""


def every_kind_of_event(base: type[Event] = Event) -> set[type[Event]]:
    return {k for sub in base.__subclasses__() for k in (sub, *every_kind_of_event(sub))}


# --- values the contracts allow --------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON document (what a schema or a tool's arguments may hold)."""
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)


def _max_length(metadata: list[Any]) -> int | None:
    return next((m.max_length for m in metadata if getattr(m, "max_length", None)), None)


def matching(pattern: str, *, max_length: int | None = None) -> st.SearchStrategy[str]:
    """Text pydantic's `pattern` accepts: a search, so only what the pattern anchors is fixed."""
    text = st.from_regex(pattern, fullmatch=pattern.endswith("$"))
    return text if max_length is None else text.filter(lambda s: len(s) <= max_length)


def values_of(annotation: Any, metadata: list[Any], *, finite: bool) -> st.SearchStrategy[Any]:
    """Values of a field's type within its constraints (Hypothesis reads annotated_types'
    bounds and lengths; patterns, nested models and `finite` floats are drawn here)."""
    args = get_args(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return st.none() | values_of(inner, metadata, finite=finite)
    if annotation is float and finite:
        return values_of(float, metadata, finite=False).filter(math.isfinite)
    if pattern := next((m.pattern for m in metadata if getattr(m, "pattern", None)), None):
        return matching(pattern, max_length=_max_length(metadata))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return models(annotation)
    if annotation == dict[str, Any]:
        return JSON_OBJECTS
    constrained: Any = typing.Annotated[annotation, *metadata] if metadata else annotation
    return st.from_type(constrained)


M = TypeVar("M", bound=BaseModel)


def models(model: type[M], **drawn: st.SearchStrategy[Any]) -> st.SearchStrategy[M]:
    """Instances of `model`, every field drawn (optional ones too), `drawn` overriding some."""
    fields: dict[str, FieldInfo] = model.model_fields
    finite = model.model_config.get("allow_inf_nan") is False
    return st.builds(
        model,
        **{
            name: drawn[name]
            if name in drawn
            else values_of(field.annotation, field.metadata, finite=finite)
            for name, field in fields.items()
            if name != "type"  # the pinned literal: its default
        },
    )


NODE_IDS = matching(NODE_ID_PATTERN)


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    """A workflow that can run: unique node ids, transitions to its own nodes, each either the
    caller's words or the collected data, and no way out of a final node."""
    ids = draw(st.lists(NODE_IDS, min_size=1, max_size=4, unique=True))
    ways_out = st.builds(
        Transition,
        to=st.sampled_from(ids),
        when=st.text(max_size=40),
        examples=st.lists(st.text(max_size=40), max_size=3).map(tuple),
    ) | st.builds(Transition, to=st.sampled_from(ids), once_collected=st.just(True))
    variables = models(Variable)
    nodes = []
    for node_id in ids:
        end_call = draw(st.booleans())
        nodes.append(
            draw(
                models(
                    WorkflowNode,
                    id=st.just(node_id),
                    collect=st.lists(variables, max_size=2).map(tuple),
                    tools=st.none() | st.lists(st.sampled_from(sorted(BUILT_IN_TOOLS))).map(tuple),
                    transitions=st.just(())
                    if end_call
                    else st.lists(ways_out, max_size=3).map(tuple),
                    end_call=st.just(end_call),
                )
            )
        )
    return Workflow(start=draw(st.sampled_from(ids)), nodes=tuple(nodes))


http_tools = models(HttpTool, parameters=JSON_OBJECTS).filter(
    lambda tool: tool.name not in BUILT_IN_TOOLS
)
agent_specs = models(
    AgentSpec,
    llm=st.none() | models(LanguageModel),
    stt=models(SpeechToText),
    tts=models(TextToSpeech),
    turn_taking=models(TurnTaking),
    phone_numbers=st.lists(matching(E164_PATTERN), max_size=3).map(tuple),
    tools=st.lists(http_tools, max_size=3, unique_by=lambda tool: tool.name).map(tuple),
    knowledge_base=st.none() | models(KnowledgeBaseUse),
    workflow=st.none() | workflows(),
    voicemail=models(Voicemail),
    post_call=models(PostCall, extraction=st.none() | JSON_OBJECTS),
)

KINDS = sorted(DECODERS, key=lambda kind: kind.__name__)


def events_of(kind: type[Event]) -> st.SearchStrategy[Event]:
    return models(AgentConfigured, agent=agent_specs) if kind is AgentConfigured else models(kind)


@st.composite
def envelopes(draw: st.DrawFn, kind: type[Event] | None = None) -> Envelope[Any]:
    """An event (of `kind`, or of any kind alike) in the envelope it travels in."""
    wrapped = envelope(
        draw(events_of(kind or draw(st.sampled_from(KINDS)))),
        call_id=draw(st.text(min_size=1, max_size=128)),
        producer=draw(st.text(max_size=40)),
        stamps=draw(models(StageStamps)),
        event_id=draw(st.uuids()),
    )
    created_at = draw(st.floats(allow_nan=False, allow_infinity=False))
    return wrapped.model_copy(update={"created_at": created_at})


# --- properties ------------------------------------------------------------------------------


def test_every_kind_of_event_travels_on_a_topic() -> None:
    assert set(DECODERS) == every_kind_of_event()


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
@settings(max_examples=40)  # per kind of event, of which there are 30
@given(st.data())
def test_every_event_survives_its_envelopes_json(kind: type[Event], data: st.DataObject) -> None:
    env = data.draw(envelopes(kind))
    decoded = DECODERS[kind].validate_json(env.model_dump_json())
    assert decoded == env


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    "where", ["created_at", "stamps.speech_ended", "event.received_at"], ids=str
)
def test_numbers_json_cannot_carry_are_refused(number: str, where: str) -> None:
    """NaN and infinity would go out as null: refused on the way in, as Python's json writes
    them, so what is accepted is what comes back."""
    frame = InboundAudioFrame(seq=0, audio=b"\xff", format=TELEPHONE, received_at=0.0)
    document = json.loads(envelope(frame, call_id="c", producer="p").model_dump_json())
    *path, field = where.split(".")
    holder = document
    for part in path:
        holder = holder[part]
    holder[field] = "@"
    with pytest.raises(ValidationError, match="finite number"):
        DECODERS[InboundAudioFrame].validate_json(json.dumps(document).replace('"@"', number))


def decodes_or_refuses(decoder: TypeAdapter[Envelope[Any]], raw: str | bytes) -> None:
    """The decoder answers an envelope or a ValidationError, nothing else."""
    with contextlib.suppress(ValidationError):
        decoder.validate_json(raw)


@given(st.sampled_from(TOPIC_EVENTS), st.binary(max_size=200) | JSON_VALUES.map(json.dumps))
def test_any_message_decodes_or_is_refused(topic_event: Any, raw: str | bytes) -> None:
    decodes_or_refuses(DECODERS[kinds_on(topic_event)[0]], raw)


@given(st.data(), envelopes(), JSON_VALUES)
def test_a_message_with_any_field_spoilt_decodes_or_is_refused(
    data: st.DataObject, env: Envelope[Any], spoilt: Any
) -> None:
    """One field, anywhere in the envelope, replaced by any JSON value (or removed)."""
    document = json.loads(env.model_dump_json())
    holder = document
    while True:
        key = data.draw(st.sampled_from(sorted(holder)))
        if not isinstance(holder[key], dict) or not holder[key] or data.draw(st.booleans()):
            break
        holder = holder[key]
    if data.draw(st.booleans()):
        del holder[key]
    else:
        holder[key] = spoilt
    decodes_or_refuses(DECODERS[type(env.event)], json.dumps(document))


@given(st.integers(1, 20_000).map(lambda depth: "[" * depth + "]" * depth))
def test_deeply_nested_json_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        DECODERS[InboundAudioFrame].validate_json(raw)
