"""The calls media listens to: each call's audio decoded, resampled to 16 kHz and cut into turns.

State per call is small and rebuildable: a worker that takes over a call mid-stream (after a
rebalance) starts listening at the frame it receives, estimating its offset from the frame's seq.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TypeVar

from voicebus_audio import PartialSampleError, Resampler, to_mono_pcm16
from voicebus_contracts import (
    SPEECH_16K,
    AudioFormat,
    CallStarted,
    Envelope,
    InboundAudioFrame,
    SpeechStarted,
    SpeechStopped,
    StageStamps,
    Utterance,
    UtteranceChunk,
    derived_id,
    envelope,
)
from voicebus_media.ports import Samples, VoiceActivityModel
from voicebus_media.settings import MediaSettings
from voicebus_media.turns import (
    SAMPLES_PER_MS,
    TurnDetector,
    TurnEvent,
    TurnGrew,
    TurnStarted,
    samples_to_ms,
)
from voicebus_runtime.agents import AgentDirectory

log = logging.getLogger(__name__)

PRODUCER = "media"
ENDED_CALLS_REMEMBERED = 10_000
"""Ended calls whose late frames are still recognised (and dropped) rather than reopened."""

MediaEnvelope = (
    Envelope[SpeechStarted]
    | Envelope[SpeechStopped]
    | Envelope[UtteranceChunk]
    | Envelope[Utterance]
)
MediaEventT = TypeVar("MediaEventT", SpeechStarted, SpeechStopped, UtteranceChunk, Utterance)


@dataclass
class Call:
    """One call's audio pipeline and where it is in the call's frame stream."""

    call_id: str
    format: AudioFormat
    resampler: Resampler
    turns: TurnDetector
    next_seq: int
    heard_from: int
    """Where (in 16 kHz samples into the call) listening started."""
    last_heard: float
    """Monotonic time the last frame was handled, to forget calls whose end never arrived."""
    samples_heard: int = 0
    """Samples of the call's own rate decoded so far."""

    def hear(self, samples: Samples, *, heard_at: float) -> list[TurnEvent]:
        """Resample a frame's decoded audio to 16 kHz and listen to it for turns."""
        frame_start = self.heard_from + (
            self.samples_heard * SPEECH_16K.sample_rate // self.format.sample_rate
        )
        self.samples_heard += len(samples)
        return self.turns.feed(
            self.resampler.process(samples), frame_start=frame_start, heard_at=heard_at
        )

    def envelopes(
        self, event: TurnEvent, *, cause: Envelope[InboundAudioFrame]
    ) -> list[MediaEnvelope]:
        """The bus events a turn event of this call is announced with, derived from its frame."""
        # Named by where its speech starts: unique in the call, and the same after a rebuild.
        turn_id = f"{self.call_id}:t{event.speech_offset_ms}"
        if isinstance(event, TurnStarted):
            started = SpeechStarted(turn_id=turn_id, audio_offset_ms=event.speech_offset_ms)
            return [self._envelope(started, cause=cause, stamps=cause.stamps)]
        if isinstance(event, TurnGrew):
            chunk = UtteranceChunk(
                turn_id=turn_id,
                seq=event.seq,
                audio=event.audio.astype("<i2").tobytes(),
                format=SPEECH_16K,
                paused=event.paused,
            )
            name = f"{turn_id}:{chunk.type}:{chunk.seq}"
            return [self._envelope(chunk, cause=cause, stamps=cause.stamps, name=name)]
        stamps = cause.stamps.stamp(speech_ended=event.speech_ended_at, turn_ended=time.time())
        if event.cut:
            log.info("call %s: turn %s cut at the longest utterance", self.call_id, turn_id)
        stopped = SpeechStopped(turn_id=turn_id, audio_offset_ms=event.speech_end_offset_ms)
        utterance = Utterance(
            turn_id=turn_id,
            audio=event.audio.astype("<i2").tobytes(),
            format=SPEECH_16K,
            duration_ms=samples_to_ms(len(event.audio)),
            speech_end_ms=event.speech_end_ms,
        )
        return [
            self._envelope(stopped, cause=cause, stamps=stamps),
            self._envelope(utterance, cause=cause, stamps=stamps),
        ]

    def _envelope(
        self,
        event: MediaEventT,
        *,
        cause: Envelope[InboundAudioFrame],
        stamps: StageStamps,
        name: str | None = None,
    ) -> Envelope[MediaEventT]:
        """`event`, named by its frame and `name` (by default, its turn and type)."""
        name = name or f"{event.turn_id}:{event.type}"
        return envelope(
            event,
            call_id=self.call_id,
            producer=PRODUCER,
            stamps=stamps,
            event_id=derived_id(cause.event_id, name),
        )


class Calls:
    """Every call this worker hears, keyed by call id; each listened to with its agent's
    turn-taking settings where `agents` knows them."""

    def __init__(
        self,
        *,
        vad: VoiceActivityModel,
        settings: MediaSettings,
        agents: AgentDirectory | None = None,
    ) -> None:
        self._vad = vad
        self._settings = settings
        self._agents = agents or AgentDirectory()
        self._agent_of: dict[str, str] = {}
        """The agent of each call that started while this worker listened."""
        self._calls: dict[str, Call] = {}
        self._ended: dict[str, None] = {}
        """Recently ended calls, oldest first."""

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._calls

    def started(self, call_id: str, call: CallStarted) -> None:
        """Note the call's agent; its pipeline opens with its first frame, in its format. The
        call's first frames may come before its start (another topic): then the pipeline they
        opened takes the agent's settings now."""
        self._agent_of[call_id] = call.agent_id
        if len(self._agent_of) > ENDED_CALLS_REMEMBERED:  # calls whose end never came
            del self._agent_of[next(iter(self._agent_of))]
        if (opened := self._calls.get(call_id)) is not None:
            opened.turns.tune(self._settings_of(call_id))
        log.info(
            "call %s: started on %s, audio in %s %d Hz",
            call_id,
            call.transport,
            call.audio_in.encoding,
            call.audio_in.sample_rate,
        )

    def ended(self, call_id: str) -> None:
        """Forget the call; frames of it that arrive late are dropped."""
        self._calls.pop(call_id, None)
        self._agent_of.pop(call_id, None)
        self._ended[call_id] = None
        if len(self._ended) > ENDED_CALLS_REMEMBERED:
            del self._ended[next(iter(self._ended))]
        log.info("call %s: ended, %d calls open", call_id, len(self._calls))

    def hear(self, env: Envelope[InboundAudioFrame]) -> list[MediaEnvelope]:
        """Take a frame of a call's audio; return the speech events and utterances it completes."""
        frame = env.event
        if env.call_id in self._ended:
            log.debug("call %s: frame %d after the call ended, dropped", env.call_id, frame.seq)
            return []
        call = self._calls.get(env.call_id) or self._open(env)
        if frame.format != call.format:
            log.warning(
                "call %s: frame %d is %s but the call's audio is %s; frame skipped",
                env.call_id,
                frame.seq,
                frame.format,
                call.format,
            )
            return []
        if frame.seq < call.next_seq:
            log.debug("call %s: frame %d already heard, skipped", env.call_id, frame.seq)
            return []
        if frame.seq > call.next_seq:
            log.warning(
                "call %s: %d frames missing before frame %d",
                env.call_id,
                frame.seq - call.next_seq,
                frame.seq,
            )
        call.next_seq = frame.seq + 1
        call.last_heard = time.monotonic()
        try:
            samples = to_mono_pcm16(frame.audio, frame.format)
        except PartialSampleError as refused:
            log.warning("call %s: frame %d skipped: %s", env.call_id, frame.seq, refused)
            return []
        events = call.hear(samples, heard_at=frame.received_at)
        return [out for event in events for out in call.envelopes(event, cause=env)]

    def _open(self, env: Envelope[InboundAudioFrame]) -> Call:
        self._forget_idle()
        frame = env.event
        start_offset_ms = round(frame.seq * frame.format.duration_ms(len(frame.audio)))
        if frame.seq:
            log.info(
                "call %s: listening from frame %d (~%d ms into the call)",
                env.call_id,
                frame.seq,
                start_offset_ms,
            )
        call = Call(
            call_id=env.call_id,
            format=frame.format,
            resampler=Resampler(from_rate=frame.format.sample_rate, to_rate=SPEECH_16K.sample_rate),
            turns=TurnDetector(
                vad=self._vad.new_detector(), settings=self._settings_of(env.call_id)
            ),
            next_seq=frame.seq,
            heard_from=start_offset_ms * SAMPLES_PER_MS,
            last_heard=time.monotonic(),
        )
        self._calls[env.call_id] = call
        return call

    def _settings_of(self, call_id: str) -> MediaSettings:
        agent_id = self._agent_of.get(call_id)
        agent = None if agent_id is None else self._agents.get(agent_id)
        if agent is None:
            return self._settings
        return self._settings.for_agent(agent.turn_taking)

    def _forget_idle(self) -> None:
        idle_since = time.monotonic() - self._settings.idle_call_timeout_s
        for call_id in [c.call_id for c in self._calls.values() if c.last_heard < idle_since]:
            log.warning("call %s: no audio for a while and no CallEnded; forgotten", call_id)
            del self._calls[call_id]
