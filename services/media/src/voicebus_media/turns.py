"""Turn detection: where the caller's speech starts, and when their turn is over.

Fed one call's 16 kHz PCM16 audio in whatever chunk sizes it arrives in, the detector cuts it into
VAD windows and runs a small state machine over their speech probabilities:

    listening --speech window--> maybe speaking --min_speech_ms of speech--> speaking
        ^                               |                                       |
        +--- onset_gap_ms of silence ---+      end_of_turn_silence_ms of silence +
        +--------------------------------------- or MAX_UTTERANCE_MS of audio ---+

A window starts speech at `speech_threshold`; from then on, only a window below the lower
`silence_threshold` counts as silence (hysteresis), so speech that wavers does not flicker, and a
dip shorter than `onset_gap_ms` does not throw away the onset of a turn being confirmed.

While the caller speaks, the turn's audio also goes out as it grows (TurnGrew): every
`partial_interval_ms`, for partial transcripts, and as soon as `early_transcript_silence_ms` of
silence suggests the turn may be over, so speech recognition can work while the rest of the
end-of-turn silence runs.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from voicebus_contracts import MAX_UTTERANCE_MS, SPEECH_16K
from voicebus_media.ports import Samples, VoiceActivityDetector
from voicebus_media.settings import MediaSettings

SAMPLES_PER_MS = SPEECH_16K.sample_rate // 1000


def samples_to_ms(samples: int) -> int:
    return samples // SAMPLES_PER_MS


@dataclass(frozen=True)
class TurnStarted:
    """The caller has been speaking for at least `min_speech_ms`."""

    speech_offset_ms: int
    """Where in the call's audio the speech began (not the pre-roll)."""


@dataclass(frozen=True)
class TurnGrew:
    """More of a confirmed turn's audio: what it gained since the last TurnGrew (the whole turn
    so far, pre-roll included, for the first)."""

    speech_offset_ms: int
    """Where in the call's audio the turn's speech began, as in its TurnStarted."""
    seq: int
    """0 for the turn's first TurnGrew, then 1, 2, ..."""
    audio: Samples
    paused: bool
    """The caller has been silent for `early_transcript_silence_ms`: the audio so far holds all
    the turn's speech, unless they go on."""


@dataclass(frozen=True)
class TurnEnded:
    """The caller's turn is over; `audio` is the whole turn, ready for speech recognition."""

    speech_offset_ms: int
    """Where in the call's audio the turn's speech began, as in its TurnStarted."""
    speech_end_offset_ms: int
    """Where in the call's audio the last speech of the turn ended (or where it was cut)."""
    audio: Samples
    """Pre-roll, the speech and a little trailing silence, at 16 kHz."""
    speech_end_ms: int
    """Where in `audio` the last speech ended."""
    speech_ended_at: float
    """Gateway receipt time of the first silent audio after the last speech (or of the cut)."""
    cut: bool
    """The turn was cut at MAX_UTTERANCE_MS while the caller may still be speaking."""


TurnEvent = TurnStarted | TurnGrew | TurnEnded


class _State(enum.Enum):
    LISTENING = enum.auto()
    MAYBE_SPEAKING = enum.auto()
    SPEAKING = enum.auto()


class TurnDetector:
    """Turns of one call, from its 16 kHz audio and a VAD holding that call's state."""

    def __init__(
        self,
        *,
        vad: VoiceActivityDetector,
        settings: MediaSettings,
    ) -> None:
        self._vad = vad
        self._window = vad.window_samples
        self._preroll_samples = settings.preroll_ms * SAMPLES_PER_MS
        self._max_samples = MAX_UTTERANCE_MS * SAMPLES_PER_MS
        self.tune(settings)

        self._filling = np.zeros(self._window, dtype=np.int16)
        self._filled = 0
        self._position: int | None = None
        """Position in the call's audio of the next window, in samples; from the first frame."""
        self._frames: deque[tuple[int, float]] = deque()
        """(position, receipt time) of the frames that carried audio not yet heard."""

        self._state = _State.LISTENING
        self._recent: deque[Samples] = deque(maxlen=math.ceil(self._preroll_samples / self._window))
        self._turn: list[Samples] = []
        self._turn_samples = 0
        self._turn_origin = 0
        """Position of the first sample of `_turn` (the pre-roll's start)."""
        self._speech_start = 0
        self._speech_windows = 0
        self._silence_windows = 0
        self._speech_end = 0
        self._silence_heard_at = 0.0
        self._sent_samples = 0
        """How much of `_turn` has gone out in TurnGrew events."""
        self._grew = 0

    def tune(self, settings: MediaSettings) -> None:
        """Listen with `settings` from the next window on (a call's agent may be known only
        after its first frames); the pre-roll already kept stays as it is."""
        self._speech_threshold = settings.speech_threshold
        self._silence_threshold = settings.silence_threshold
        self._min_speech_windows = max(1, self._windows_in(settings.min_speech_ms))
        self._end_of_turn_windows = max(1, self._windows_in(settings.end_of_turn_silence_ms))
        self._early_transcript_windows = max(
            1, self._windows_in(settings.early_transcript_silence_ms)
        )
        self._partial_interval_samples = settings.partial_interval_ms * SAMPLES_PER_MS
        self._onset_gap_windows = max(1, self._windows_in(settings.onset_gap_ms))
        self._trailing_samples = settings.trailing_silence_ms * SAMPLES_PER_MS

    def _windows_in(self, ms: int) -> int:
        return math.ceil(ms * SAMPLES_PER_MS / self._window)

    def feed(self, samples: Samples, *, frame_start: int, heard_at: float) -> list[TurnEvent]:
        """Take the next chunk of the call's audio.

        `frame_start` is where (in 16 kHz samples into the call's audio as heard, so without
        lost frames) the frame that carried the chunk began, and `heard_at` when the gateway
        received it. Resampling delays audio, so a chunk may hold the tail of earlier frames:
        each window is dated by the frame its first sample came in.
        """
        position = frame_start if self._position is None else self._position
        self._frames.append((frame_start, heard_at))
        events: list[TurnEvent] = []
        taken = 0
        while taken < len(samples):
            count = min(self._window - self._filled, len(samples) - taken)
            self._filling[self._filled : self._filled + count] = samples[taken : taken + count]
            self._filled += count
            taken += count
            if self._filled == self._window:
                self._filled = 0
                self._hear_window(self._filling.copy(), start=position, events=events)
                position += self._window
        self._position = position
        return events

    def _heard_at(self, position: int) -> float:
        """When the gateway received the frame holding the audio at `position`."""
        while len(self._frames) > 1 and self._frames[1][0] <= position:
            self._frames.popleft()
        return self._frames[0][1]

    def _hear_window(self, window: Samples, *, start: int, events: list[TurnEvent]) -> None:
        heard_at = self._heard_at(start)
        if self._state is not _State.LISTENING and (
            self._turn_samples + self._window > self._max_samples
        ):
            events.append(self._cut(heard_at))
        threshold = (
            self._speech_threshold if self._state is _State.LISTENING else self._silence_threshold
        )
        speech = self._vad.speech_probability(window) >= threshold
        if self._state is _State.LISTENING and speech:
            self._begin(start)
        if self._state is not _State.LISTENING:
            self._continue_turn(window, start=start, speech=speech, heard_at=heard_at, out=events)
            if (
                self._state is _State.MAYBE_SPEAKING
                and self._silence_windows >= self._onset_gap_windows
            ):
                self._listen()  # a blip, not a turn
        self._recent.append(window)

    def _begin(self, start: int) -> None:
        preroll = (
            np.concatenate(self._recent)[-self._preroll_samples :]
            if self._recent and self._preroll_samples
            else np.zeros(0, dtype=np.int16)
        )
        self._state = _State.MAYBE_SPEAKING
        self._turn = [preroll]
        self._turn_samples = len(preroll)
        self._turn_origin = start - len(preroll)
        self._speech_start = start
        self._speech_windows = 0
        self._silence_windows = 0
        self._sent_samples = 0
        self._grew = 0

    def _continue_turn(
        self, window: Samples, *, start: int, speech: bool, heard_at: float, out: list[TurnEvent]
    ) -> None:
        self._turn.append(window)
        self._turn_samples += self._window
        if speech:
            self._speech_windows += 1
            self._silence_windows = 0
            self._speech_end = start + self._window
            if self._state is _State.MAYBE_SPEAKING and (
                self._speech_windows >= self._min_speech_windows
            ):
                self._state = _State.SPEAKING
                out.append(TurnStarted(speech_offset_ms=samples_to_ms(self._speech_start)))
        else:
            if self._silence_windows == 0:
                self._silence_heard_at = heard_at
            self._silence_windows += 1
            if self._silence_windows >= self._end_of_turn_windows:
                out.append(self._end())
                return
        if self._state is not _State.SPEAKING:
            return
        if self._silence_windows == self._early_transcript_windows:
            out.append(self._grow(paused=True))
        elif self._partial_interval_samples and (
            self._turn_samples - self._sent_samples >= self._partial_interval_samples
        ):
            out.append(self._grow(paused=False))

    def _grow(self, *, paused: bool) -> TurnGrew:
        audio = np.concatenate(self._turn)[self._sent_samples :]
        self._sent_samples = self._turn_samples
        self._grew += 1
        return TurnGrew(
            speech_offset_ms=samples_to_ms(self._speech_start),
            seq=self._grew - 1,
            audio=audio,
            paused=paused,
        )

    def _listen(self) -> None:
        self._state = _State.LISTENING
        self._turn = []
        self._turn_samples = 0

    def _end(self) -> TurnEnded:
        audio = np.concatenate(self._turn)
        spoken = self._speech_end - self._turn_origin
        self._listen()
        return TurnEnded(
            speech_offset_ms=samples_to_ms(self._speech_start),
            speech_end_offset_ms=samples_to_ms(self._speech_end),
            audio=audio[: spoken + self._trailing_samples],
            speech_end_ms=samples_to_ms(spoken),
            speech_ended_at=self._silence_heard_at,
            cut=False,
        )

    def _cut(self, heard_at: float) -> TurnEnded:
        audio = np.concatenate(self._turn)
        cut_at = self._turn_origin + len(audio)
        self._listen()
        # What follows the cut is no pre-roll: it would repeat the end of this turn.
        self._recent.clear()
        return TurnEnded(
            speech_offset_ms=samples_to_ms(self._speech_start),
            speech_end_offset_ms=samples_to_ms(cut_at),
            audio=audio,
            speech_end_ms=samples_to_ms(len(audio)),
            speech_ended_at=heard_at,
            cut=True,
        )
