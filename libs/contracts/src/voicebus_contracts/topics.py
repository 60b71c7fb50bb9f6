"""Every topic of the bus, with its partition count: the one place they are named.

All call topics are keyed by call id, so one call's events stay in order on one partition and
reach one worker of each consumer group. Partitions bound how many workers of a group share load.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    carries: str
    compacted: bool = False
    """Kafka keeps the latest message of each key (cleanup.policy=compact), not the latest days."""


CALLS = Topic(
    "voicebus.calls",
    12,
    "CallStarted, CallEnded, CallStatusChanged, DtmfReceived, CallAnsweredBy",
)
AUDIO_IN = Topic("voicebus.audio.in", 12, "InboundAudioFrame")
REALTIME_AUDIO_IN = Topic(
    "voicebus.audio.in.realtime", 12, "InboundAudioFrame of the calls of realtime agents"
)
SPEECH = Topic("voicebus.speech", 12, "SpeechStarted, SpeechStopped")
UTTERANCES = Topic("voicebus.utterances", 12, "UtteranceChunk, Utterance")
TRANSCRIPTS = Topic("voicebus.transcripts", 12, "FinalTranscript")
PARTIAL_TRANSCRIPTS = Topic("voicebus.transcripts.partial", 12, "PartialTranscript")
REPLIES = Topic("voicebus.replies", 12, "ReplyTextChunk, ReplyCancelled")
TOOLS = Topic(
    "voicebus.tools",
    12,
    "what the agent did besides speaking: ToolCalled, ToolReturned, WorkflowProgressed",
)
PLAYBACK = Topic("voicebus.playback", 12, "ReplyPlaybackStarted, ReplyPaused")
HEARTBEATS = Topic("voicebus.heartbeats", 1, "ServiceHeartbeat (keyed by service instance)")
AGENTS = Topic(
    "voicebus.agents", 1, "AgentConfigured, AgentRemoved (keyed by agent id)", compacted=True
)
"""The agent catalog: read whole, from the beginning, by every service that needs it; one
partition keeps every agent's changes in order, and compaction keeps the latest of each."""

CALL_TOPICS: tuple[Topic, ...] = (
    CALLS,
    AUDIO_IN,
    REALTIME_AUDIO_IN,
    SPEECH,
    UTTERANCES,
    TRANSCRIPTS,
    PARTIAL_TRANSCRIPTS,
    REPLIES,
    TOOLS,
    PLAYBACK,
)
DEAD_LETTERS = Topic(
    "voicebus.deadletters",
    1,
    "any message a consumer could not decode or handle, as it was, with headers saying why "
    "(keyed by its original key)",
)
"""Few messages, read whole by an operator: one partition keeps them in the order they failed."""
ALL_TOPICS: tuple[Topic, ...] = (*CALL_TOPICS, HEARTBEATS, AGENTS, DEAD_LETTERS)

GATEWAY_TOPIC_PARTITIONS = 3


def gateway_topic(gateway_id: str) -> Topic:
    """The topic a gateway replica reads the audio and control for its own calls from."""
    return Topic(
        f"voicebus.gateway.{gateway_id}",
        GATEWAY_TOPIC_PARTITIONS,
        "OutboundAudioChunk, HangUp, TransferCall, SendDtmf, ClearPlayback, PausePlayback, "
        "ResumePlayback, CancelReply",
    )
