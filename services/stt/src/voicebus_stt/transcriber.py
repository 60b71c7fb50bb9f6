"""The STT core for a local recognizer: a turn's audio in, its transcripts out.

It listens along while the caller speaks. Media sends a turn's audio in chunks as it grows:
every so often a sketch of the turn so far becomes a partial transcript, and when the caller
pauses, the audio so far is transcribed in full (a draft) while media waits out the rest of the
end-of-turn silence. If the turn's Utterance then shows that no speech came after that pause,
the draft is its final transcript, and the turn's transcription cost overlaps the silence.

A turn in which the recognizer heard no words (noise, a cough) still gets a FinalTranscript,
with empty text: the turn's latency chain closes and analytics sees the turn, while the agent
ignores empty text and does not reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from voicebus_audio import resample, to_mono_pcm16
from voicebus_contracts import (
    MAX_TEXT_CHARS,
    MAX_UTTERANCE_MS,
    SPEECH_16K,
    Envelope,
    FinalTranscript,
    PartialTranscript,
    Utterance,
    UtteranceChunk,
)
from voicebus_stt.ports import SpeechRecognizer, Transcription
from voicebus_stt.recognition import Audio, Recognition, Urgency

log = logging.getLogger(__name__)

SAMPLES_PER_MS = SPEECH_16K.sample_rate // 1000
FORGET_TURN_AFTER_S = MAX_UTTERANCE_MS / 1000 + 10
"""A turn whose Utterance has not come this long after its last chunk never will (the call
ended, or the turn went to another worker)."""

PartialSink = Callable[[Envelope[UtteranceChunk], PartialTranscript], Awaitable[None]]
"""Publishes a partial transcript, caused by the latest chunk it heard."""


def speech_pcm16(audio: Utterance | UtteranceChunk) -> npt.NDArray[np.int16]:
    """An utterance's (or chunk's) audio as mono PCM16 at 16 kHz, whatever it came as."""
    fmt = audio.format
    return resample(
        to_mono_pcm16(audio.audio, fmt),
        from_rate=fmt.sample_rate,
        to_rate=SPEECH_16K.sample_rate,
    )


def speech_samples(audio: Utterance | UtteranceChunk) -> Audio:
    """An utterance's (or chunk's) audio as mono float32 samples in [-1, 1] at 16 kHz."""
    return speech_pcm16(audio).astype(np.float32) / 32768.0


def final_transcript(utterance: Utterance, *, text: str, language: str | None) -> FinalTranscript:
    """What was heard in `utterance`, as its turn's transcript: stripped and bounded in length."""
    return FinalTranscript(
        turn_id=utterance.turn_id,
        text=text.strip()[:MAX_TEXT_CHARS],
        language=language,
        duration_ms=utterance.duration_ms,
    )


@dataclass
class _Draft:
    """The turn's audio as it was when the caller paused, and its transcription."""

    audio: Audio
    heard: asyncio.Future[Transcription | None]


@dataclass
class _LiveTurn:
    """A turn still under way, as its chunks have brought it."""

    latest: Envelope[UtteranceChunk]
    audio: Audio = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    sketched: int = 0
    """How much of the audio the last sketch heard (or is about to)."""
    sketch_queued: bool = False
    draft: _Draft | None = None
    published: str = ""
    touched: float = field(default_factory=time.monotonic)

    def take(self, env: Envelope[UtteranceChunk]) -> None:
        self.audio = np.concatenate([self.audio, speech_samples(env.event)])
        self.latest = env
        self.touched = time.monotonic()

    @property
    def samples(self) -> int:
        return len(self.audio)

    def drop_draft(self) -> None:
        """The draft will not be used: if it has not started, it will not run."""
        if self.draft is not None:
            self.draft.heard.cancel()


class Transcriber:
    """UtteranceTranscriber for a local SpeechRecognizer.

    Recognition runs on one worker thread (see `Recognition`), so the event loop (consumer,
    heartbeat) keeps running while the CPU-bound recognizer works. Partial transcripts go to
    `on_partial`; without it, chunks are only drafted at pauses.
    """

    def __init__(
        self, *, recognizer: SpeechRecognizer, on_partial: PartialSink | None = None
    ) -> None:
        self._recognition = Recognition(recognizer)
        self._on_partial = on_partial
        self._turns: dict[str, _LiveTurn] = {}
        self._publishing: set[asyncio.Task[None]] = set()

    async def listen(self, env: Envelope[UtteranceChunk]) -> None:
        chunk = env.event
        self._forget_stale()
        turn = self._turns.get(chunk.turn_id)
        expected = 0 if turn is None else turn.latest.event.seq + 1
        if chunk.seq != expected:
            # A redelivery (seq too low) changes nothing; a gap (this worker joined the turn
            # late) leaves its audio incomplete: the Utterance will be transcribed whole.
            if chunk.seq > expected:
                log.info(
                    "turn %s: chunks missing before %d, not listening", chunk.turn_id, chunk.seq
                )
                if (dropped := self._turns.pop(chunk.turn_id, None)) is not None:
                    dropped.drop_draft()
            return
        if turn is None:
            turn = self._turns[chunk.turn_id] = _LiveTurn(latest=env)
        turn.take(env)
        if chunk.paused:
            turn.drop_draft()  # the caller went on after an earlier pause
            audio = turn.audio
            turn.draft = _Draft(audio, self._recognition.submit(Urgency.DRAFT, lambda: audio))
            turn.sketched = turn.samples
            self._publish_when_heard(turn, turn.draft.heard)
        elif self._on_partial is not None and not turn.sketch_queued:
            turn.sketch_queued = True
            self._publish_when_heard(
                turn, self._recognition.submit(Urgency.SKETCH, lambda: self._to_sketch(turn))
            )

    def _to_sketch(self, turn: _LiveTurn) -> Audio | None:
        """The turn's audio for a sketch about to run: None if the turn is over, or if nothing
        came since the last sketch or draft."""
        turn.sketch_queued = False
        if self._turns.get(turn.latest.event.turn_id) is not turn or turn.sketched == turn.samples:
            return None
        turn.sketched = turn.samples
        return turn.audio

    def _publish_when_heard(
        self, turn: _LiveTurn, heard: asyncio.Future[Transcription | None]
    ) -> None:
        if self._on_partial is None:
            return
        task = asyncio.create_task(self._publish_partial(turn, heard, self._on_partial))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish_partial(
        self,
        turn: _LiveTurn,
        heard: asyncio.Future[Transcription | None],
        publish: PartialSink,
    ) -> None:
        cause = turn.latest
        audio_ms = turn.samples // SAMPLES_PER_MS
        try:
            transcription = await heard
        except Exception:
            log.warning("turn %s: partial transcript failed", cause.event.turn_id, exc_info=True)
            return
        if transcription is None or self._turns.get(cause.event.turn_id) is not turn:
            return  # nothing new, or the final transcript is already out
        text = transcription.text.strip()[:MAX_TEXT_CHARS]
        if not text or text == turn.published:
            return
        turn.published = text
        partial = PartialTranscript(turn_id=cause.event.turn_id, text=text, audio_ms=audio_ms)
        try:
            await publish(cause, partial)
        except Exception:
            log.warning("turn %s: partial transcript not published", partial.turn_id, exc_info=True)

    async def transcribe(self, utterance: Utterance) -> FinalTranscript:
        audio = speech_samples(utterance)
        turn = self._turns.pop(utterance.turn_id, None)
        heard = None if turn is None else await self._drafted(turn, utterance, audio)
        if heard is None:
            if turn is not None:
                turn.drop_draft()
            heard = await self._recognition.hear(audio)
        return final_transcript(utterance, text=heard.text, language=heard.language)

    async def _drafted(
        self, turn: _LiveTurn, utterance: Utterance, audio: Audio
    ) -> Transcription | None:
        """The draft taken at the caller's last pause, if it holds all of the turn's speech."""
        draft = turn.draft
        if draft is None or utterance.speech_end_ms is None:
            return None
        spoken = utterance.speech_end_ms * SAMPLES_PER_MS
        if len(draft.audio) < spoken or not np.array_equal(draft.audio[:spoken], audio[:spoken]):
            return None  # the caller went on after the pause
        try:
            heard = await draft.heard
        except Exception:
            log.warning("turn %s: draft failed, transcribing again", utterance.turn_id)
            return None
        log.debug("turn %s: the draft taken at the pause is final", utterance.turn_id)
        return heard

    def _forget_stale(self) -> None:
        stale = time.monotonic() - FORGET_TURN_AFTER_S
        for turn_id in [t for t, turn in self._turns.items() if turn.touched < stale]:
            self._turns.pop(turn_id).drop_draft()

    def close(self) -> None:
        for task in self._publishing:
            task.cancel()
        self._recognition.close()
