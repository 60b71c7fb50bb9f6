"""The contracts: validation rules, JSON round trips and the schema snapshot."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    CallAnsweredBy,
    CallEnded,
    CallEvent,
    CallStarted,
    CallStatusChanged,
    CancelReply,
    ClearPlayback,
    DtmfReceived,
    Envelope,
    FinalTranscript,
    GatewayEvent,
    HangUp,
    InboundAudioFrame,
    LatencyBreakdown,
    OutboundAudioChunk,
    PartialTranscript,
    PausePlayback,
    ReplyCancelled,
    ReplyPaused,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    ResumePlayback,
    SendDtmf,
    ServiceHeartbeat,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    StageStamps,
    ToolCalled,
    ToolReturned,
    TransferCall,
    Utterance,
    UtteranceChunk,
    WorkflowProgressed,
    derived_id,
    envelope,
)
from voicebus_contracts.agents import (
    AgentConfigured,
    AgentRemoved,
    AgentSpec,
    LanguageModel,
    SpeechToText,
    Transition,
    TurnTaking,
    Variable,
    Voicemail,
    Workflow,
    WorkflowNode,
)
from voicebus_contracts.events import MAX_FRAME_BYTES, Event

SNAPSHOT = Path(__file__).parent / "schema_snapshot.json"

EXAMPLES: list[Event] = [
    CallStarted(
        transport="twilio",
        agent_id="default",
        gateway_id="gw-0",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
        from_number="+15550100001",
        to_number="+15550100002",
    ),
    CallStarted(
        transport="twilio",
        agent_id="sales",
        gateway_id="gw-0",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
        to_number="+15550100003",
        direction="outbound",
        variables={"first_name": "Ada"},
        pipeline="realtime",
    ),
    CallEnded(reason="caller hung up"),
    CallStatusChanged(status="ringing", direction="outbound", to_number="+15550100003"),
    CallStatusChanged(status="completed", direction="inbound", duration_s=42),
    DtmfReceived(digit="#"),
    HangUp(reason="the agent ended the call"),
    TransferCall(to="+14155550100"),
    TransferCall(to="sip:desk@example.com"),
    SendDtmf(digits="1w23#"),
    ClearPlayback(),
    PausePlayback(turn_id="CA1:t2"),
    ResumePlayback(),
    CancelReply(reply_id="CA1:t1:reply"),
    ReplyCancelled(reply_id="CA1:t1:reply", heard_text="Hi. I can"),
    ReplyPaused(reply_id="CA1:t1:reply", turn_id="CA1:t2", sentence=1, fraction=0.5),
    InboundAudioFrame(seq=7, audio=bytes(range(160)), format=TELEPHONE, received_at=1.5),
    SpeechStarted(turn_id="CA1:t1", audio_offset_ms=120),
    SpeechStopped(turn_id="CA1:t1", audio_offset_ms=2400),
    UtteranceChunk(turn_id="CA1:t1", seq=0, audio=b"\x01\x00" * 8000, format=SPEECH_16K),
    UtteranceChunk(
        turn_id="CA1:t1", seq=1, audio=b"\x01\x00" * 4000, format=SPEECH_16K, paused=True
    ),
    Utterance(
        turn_id="CA1:t1",
        audio=b"\x01\x00" * 16000,
        format=SPEECH_16K,
        duration_ms=1000,
        speech_end_ms=800,
    ),
    PartialTranscript(turn_id="CA1:t1", text="Hello", audio_ms=500),
    FinalTranscript(turn_id="CA1:t1", text="Hello there.", language="en", duration_ms=900),
    ReplyTextChunk(reply_id="CA1:t1:reply", in_reply_to="CA1:t1", seq=0, text="Hi.", last=False),
    ReplyTextChunk(
        reply_id="CA1:t2:reply", in_reply_to="CA1:t2", seq=0, text="Sure.", last=False, voiced=True
    ),
    OutboundAudioChunk(
        reply_id="CA1:t1:reply", sentence=0, seq=0, audio=b"\xff" * 160, format=TELEPHONE, last=True
    ),
    ReplyPlaybackStarted(reply_id="CA1:t1:reply"),
    ServiceHeartbeat(service="stt", instance="stt-0"),
    AgentConfigured(
        agent=AgentSpec(
            agent_id="sales",
            name="Sales",
            greeting="Hi, this is Sales.",
            llm=LanguageModel(model="gpt-4o-mini"),
            stt=SpeechToText(provider="deepgram", language="en"),
            turn_taking=TurnTaking(end_of_turn_silence_ms=700, backchannel_words=("okay",)),
            phone_numbers=("+14155550100",),
            workflow=Workflow(
                start="qualify",
                nodes=(
                    WorkflowNode(
                        id="qualify",
                        instructions="Find out how many seats they need.",
                        collect=(Variable(name="seats", description="seats", kind="number"),),
                        transitions=(Transition(to="bye", once_collected=True),),
                    ),
                    WorkflowNode(id="bye", say="Thanks, {seats} seats noted.", end_call=True),
                ),
            ),
            voicemail=Voicemail(detect=True, message="Please call us back."),
        )
    ),
    AgentRemoved(agent_id="sales"),
    ToolCalled(tool_call_id="call_1", name="check_order", arguments='{"order": "42"}'),
    ToolReturned(
        tool_call_id="call_1",
        name="check_order",
        result='{"status": "shipped"}',
        failed=False,
        duration_ms=120,
    ),
    WorkflowProgressed(node="bye", previous_node="qualify", variables={"seats": "3"}),
    CallAnsweredBy(answered_by="machine_end_beep", detection_ms=4200),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_json_round_trip_in_its_envelope(event: Event) -> None:
    stamps = StageStamps(speech_ended=10.0, turn_ended=10.5)
    env = envelope(event, call_id="CA1", producer="test", stamps=stamps)
    again = Envelope[type(event)].model_validate_json(env.model_dump_json())  # type: ignore[misc]
    assert again == env
    assert again.schema_version == event.schema_version


def test_audio_is_standard_base64_on_the_wire() -> None:
    frame = InboundAudioFrame(seq=0, audio=b"\xff\xfe\x00", format=TELEPHONE, received_at=0.0)
    assert json.loads(frame.model_dump_json())["audio"] == "//4A"


def test_topic_unions_pick_the_event_by_type() -> None:
    assert isinstance(
        TypeAdapter(CallEvent).validate_python({"type": "call.ended", "reason": "x"}), CallEnded
    )
    speech = TypeAdapter(SpeechEvent).validate_json(
        '{"type": "speech.started", "turn_id": "t", "audio_offset_ms": 0}'
    )
    assert isinstance(speech, SpeechStarted)
    command = TypeAdapter(GatewayEvent).validate_python(
        {"type": "control.transfer", "to": "+1415555"}
    )
    assert isinstance(command, TransferCall)


@pytest.mark.parametrize(
    "fields",
    [
        {"agent_id": "Sales Team", "name": "x"},
        {"agent_id": "sales", "name": ""},
        {"agent_id": "sales", "name": "x", "phone_numbers": ["4155550100"]},
        {"agent_id": "sales", "name": "x", "turn_taking": {"end_of_turn_silence_ms": 50}},
        {"agent_id": "sales", "name": "x", "stt": {"provider": "siri"}},
        {"agent_id": "sales", "name": "x", "colour": "blue"},
    ],
)
def test_an_agent_spec_refuses_what_no_service_could_use(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgentSpec.model_validate(fields)


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (DtmfReceived, {"digit": "x"}),
        (DtmfReceived, {"digit": "12"}),
        (SendDtmf, {"digits": ""}),
        (SendDtmf, {"digits": "12;3"}),
        (TransferCall, {"to": "4155550100"}),
        (TransferCall, {"to": "+1 415 555 0100"}),
        (CallStatusChanged, {"status": "answered", "direction": "inbound"}),
    ],
)
def test_control_and_status_events_refuse_what_a_carrier_would(
    event: type[Event], fields: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        event.model_validate(fields)


@pytest.mark.parametrize(
    "bad",
    [
        {"seq": -1, "audio": "AA==", "format": TELEPHONE.model_dump(), "received_at": 0},
        {"seq": 0, "audio": "", "format": TELEPHONE.model_dump(), "received_at": 0},
        {"seq": 0, "audio": "not base64!", "format": TELEPHONE.model_dump(), "received_at": 0},
        {
            "seq": 0,
            "audio": "AA==",
            "format": {"encoding": "opus", "sample_rate": 8000},
            "received_at": 0,
        },
        {"seq": 0, "audio": "AA==", "format": TELEPHONE.model_dump(), "received_at": 0, "extra": 1},
    ],
)
def test_malformed_frames_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        InboundAudioFrame.model_validate_json(json.dumps(bad))


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(ValidationError):
        InboundAudioFrame(
            seq=0, audio=b"\x00" * (MAX_FRAME_BYTES + 1), format=TELEPHONE, received_at=0
        )


def test_events_are_immutable() -> None:
    chunk = ReplyTextChunk(reply_id="r", in_reply_to=None, seq=0, text="a", last=True)
    with pytest.raises(ValidationError):
        chunk.text = "b"  # type: ignore[misc]


def test_derived_ids_are_deterministic_and_distinct_per_label() -> None:
    cause = envelope(CallEnded(reason="x"), call_id="c", producer="p").event_id
    assert derived_id(cause, "a") == derived_id(cause, "a")
    assert derived_id(cause, "a") != derived_id(cause, "b")


def test_audio_format_durations() -> None:
    assert TELEPHONE.duration_ms(160) == 20.0
    assert SPEECH_16K.duration_ms(640) == 20.0
    assert AudioFormat(encoding="pcm16", sample_rate=8000, channels=2).duration_ms(64) == 2.0


def test_latency_breakdown_spans_each_stage() -> None:
    stamps = StageStamps(
        speech_ended=100.0,
        turn_ended=100.5,
        transcribed=101.2,
        reply_first_text=101.25,
        tts_first_audio=101.4,
        playback_started=101.42,
    )
    breakdown = LatencyBreakdown.of(stamps)
    assert breakdown.endpoint_ms == 500.0
    assert breakdown.stt_ms == 700.0
    assert breakdown.first_text_ms == 50.0
    assert breakdown.first_audio_ms == 150.0
    assert breakdown.send_ms == 20.0
    assert breakdown.voice_to_voice_ms == 1420.0
    assert LatencyBreakdown.of(StageStamps(speech_ended=1.0)).voice_to_voice_ms is None


def test_every_kind_of_event_has_an_example() -> None:
    def kinds(base: type[Event]) -> set[type[Event]]:
        return {k for sub in base.__subclasses__() for k in (sub, *kinds(sub))}

    assert kinds(Event) == {type(event) for event in EXAMPLES}


def current_schemas() -> dict[str, object]:
    return {
        type(event).__name__: Envelope[type(event)].model_json_schema()  # type: ignore[misc]
        for event in EXAMPLES
    }


def test_schemas_match_the_snapshot() -> None:
    """A change here is a change to what other services and integrators receive.

    If it is intended, bump the event's schema_version where consumers could notice, and
    regenerate with VOICEBUS_UPDATE_SCHEMA_SNAPSHOT=1.
    """
    schemas = current_schemas()
    if os.environ.get("VOICEBUS_UPDATE_SCHEMA_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(schemas, indent=2, sort_keys=True) + "\n")
    assert schemas == json.loads(SNAPSHOT.read_text())


def _workflow(*nodes: WorkflowNode, start: str = "a") -> Workflow:
    return Workflow(start=start, nodes=nodes)


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: _workflow(WorkflowNode(id="a"), start="b"), "start node 'b'"),
        (lambda: _workflow(WorkflowNode(id="a"), WorkflowNode(id="a")), "unique"),
        (
            lambda: _workflow(WorkflowNode(id="a", transitions=(Transition(to="z", when="x"),))),
            "transition to 'z'",
        ),
        (
            lambda: _workflow(
                WorkflowNode(id="a", transitions=(Transition(to="a", if_equals={"size": "2"}),))
            ),
            "which no node collects",
        ),
        (lambda: Transition(to="a"), "not both or neither"),
        (lambda: Transition(to="a", when="done", once_collected=True), "not both or neither"),
        (
            lambda: WorkflowNode(
                id="a", end_call=True, transitions=(Transition(to="a", when="x"),)
            ),
            "no transitions",
        ),
        (
            lambda: AgentSpec(
                agent_id="a",
                name="A",
                workflow=_workflow(WorkflowNode(id="a", tools=("end_call", "lookup"))),
            ),
            "does not have: ['lookup']",
        ),
    ],
)
def test_a_workflow_that_cannot_run_is_refused_saying_why(
    build: Callable[[], object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(complaint)):
        build()
