"""What the live feed tells of a call's events, as pure functions: the public shape of each
update (docs/dashboard.md), apart from the bus's own events.

What a call's client is shown of the conversation (speech, transcripts, the reply) is told in
the web call protocol's own messages, so one view of a transcript reads both; the rest (the
call's start, status and end, tools, the workflow, each reply's latency) has its own messages.
Every update also carries the call's id and when the event happened (`at`, epoch seconds).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts import (
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    CallStatus,
    CallStatusChanged,
    Direction,
    DtmfReceived,
    Envelope,
    FinalTranscript,
    LatencyBreakdown,
    PartialTranscript,
    ReplyCancelled,
    ReplyPaused,
    ReplyPlaybackStarted,
    ReplyTextChunk,
    SpeechStarted,
    SpeechStopped,
    ToolCalled,
    ToolReturned,
    Transport,
    WorkflowProgressed,
)
from voicebus_gateway.web.protocol import ServerMessage, activity_message

CallNews = Annotated[
    SpeechStarted
    | SpeechStopped
    | PartialTranscript
    | FinalTranscript
    | ReplyTextChunk
    | ReplyCancelled
    | CallStarted
    | CallStatusChanged
    | CallEnded
    | DtmfReceived
    | CallAnsweredBy
    | ToolCalled
    | ToolReturned
    | WorkflowProgressed
    | ReplyPlaybackStarted
    | ReplyPaused,
    Field(discriminator="type"),
]
"""Every event of the topics the gateway reads about all calls: speech, transcripts, replies,
calls, tools and playback."""


class _Update(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallStartedUpdate(_Update):
    type: Literal["call.started"] = "call.started"
    agent_id: str
    transport: Transport
    direction: Direction
    from_number: str | None
    to_number: str | None


class CallStatusUpdate(_Update):
    """The carrier's news of a phone call (ringing, in progress, busy...)."""

    type: Literal["call.status"] = "call.status"
    status: CallStatus


class CallEndedUpdate(_Update):
    type: Literal["call.ended"] = "call.ended"
    reason: str


class ToolCalledUpdate(_Update):
    type: Literal["tool.called"] = "tool.called"
    tool_call_id: str
    name: str
    arguments: str


class ToolReturnedUpdate(_Update):
    type: Literal["tool.returned"] = "tool.returned"
    tool_call_id: str
    name: str
    result: str
    failed: bool
    duration_ms: int


class WorkflowUpdate(_Update):
    """The call's workflow is at `node`, with every variable collected so far."""

    type: Literal["workflow.progressed"] = "workflow.progressed"
    node: str
    variables: dict[str, str]


class ReplyLatencyUpdate(_Update):
    """A reply started playing to the caller: how long each stage of its turn took."""

    type: Literal["reply.latency"] = "reply.latency"
    reply_id: str
    latency: LatencyBreakdown


Update = (
    ServerMessage
    | CallStartedUpdate
    | CallStatusUpdate
    | CallEndedUpdate
    | ToolCalledUpdate
    | ToolReturnedUpdate
    | WorkflowUpdate
    | ReplyLatencyUpdate
)


def concerns_call_list(event: CallNews) -> bool:
    """Whether the list of calls changes with `event`: a call started, its status, its end."""
    return isinstance(event, CallStarted | CallStatusChanged | CallEnded)


def update_of(env: Envelope[CallNews]) -> str | None:
    """The update (JSON) telling `env`, or None for what the feed does not tell (keys pressed,
    who answered, a reply paused for a caller who may only be saying "uh-huh")."""
    message = _message_of(env)
    if message is None:
        return None
    return json.dumps(
        {"call_id": env.call_id, "at": env.created_at, **message.model_dump(mode="json")}
    )


def _message_of(env: Envelope[CallNews]) -> Update | None:
    event = env.event
    match event:
        case CallStarted():
            return CallStartedUpdate(
                agent_id=event.agent_id,
                transport=event.transport,
                direction=event.direction,
                from_number=event.from_number,
                to_number=event.to_number,
            )
        case CallStatusChanged(status=status):
            return CallStatusUpdate(status=status)
        case CallEnded(reason=reason):
            return CallEndedUpdate(reason=reason)
        case ToolCalled(tool_call_id=tool_call_id, name=name, arguments=arguments):
            return ToolCalledUpdate(tool_call_id=tool_call_id, name=name, arguments=arguments)
        case ToolReturned():
            return ToolReturnedUpdate(
                tool_call_id=event.tool_call_id,
                name=event.name,
                result=event.result,
                failed=event.failed,
                duration_ms=event.duration_ms,
            )
        case WorkflowProgressed(node=node, variables=variables):
            return WorkflowUpdate(node=node, variables=variables)
        case ReplyPlaybackStarted(reply_id=reply_id):
            return ReplyLatencyUpdate(reply_id=reply_id, latency=LatencyBreakdown.of(env.stamps))
        case (
            SpeechStarted()
            | SpeechStopped()
            | PartialTranscript()
            | FinalTranscript()
            | ReplyTextChunk()
            | ReplyCancelled()
        ):
            return activity_message(event)
        case DtmfReceived() | CallAnsweredBy() | ReplyPaused():
            return None
        case _:
            assert_never(event)
