"""TurnDetector against a scripted VAD: when turns start, end, are ignored or cut."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from voicebus_contracts import MAX_UTTERANCE_MS
from voicebus_media.ports import Samples
from voicebus_media.settings import MediaSettings
from voicebus_media.turns import TurnDetector, TurnEnded, TurnEvent, TurnGrew, TurnStarted

WINDOW = 512
PREROLL = MediaSettings().preroll_ms * 16
"""Samples kept from before the speech."""
TRAILING = MediaSettings().trailing_silence_ms * 16
WINDOW_MS = 32
FRAME = 320
"""Samples per 20 ms frame at 16 kHz, the way a call's audio arrives."""
FRAME_S = 0.02
T0 = 1_700_000_000.0

SPEECH, DOUBT, SILENCE = 0.9, 0.4, 0.05
"""Probabilities: above speech_threshold, between the thresholds, below silence_threshold."""


class ScriptedVad:
    """Answers each window with the next probability of its script."""

    window_samples = WINDOW

    def __init__(self, script: list[float]) -> None:
        self._script: Iterator[float] = iter(script)

    def speech_probability(self, window: Samples) -> float:
        assert window.shape == (WINDOW,)
        return next(self._script)


def script(*parts: tuple[float, int]) -> list[float]:
    return [p for probability, count in parts for p in [probability] * count]


def listen(
    probabilities: list[float], settings: MediaSettings | None = None, *, growth: bool = False
) -> list[TurnEvent]:
    """Feed as many windows as scripted, in 20 ms frames; window i's samples all equal i.

    The turns' TurnGrew events are left out, unless `growth`."""
    detector = TurnDetector(vad=ScriptedVad(probabilities), settings=settings or MediaSettings())
    audio = np.repeat(np.arange(len(probabilities), dtype=np.int16), WINDOW)
    events: list[TurnEvent] = []
    for n, start in enumerate(range(0, len(audio), FRAME)):
        events += detector.feed(
            audio[start : start + FRAME], frame_start=start, heard_at=T0 + n * FRAME_S
        )
    return [e for e in events if growth or not isinstance(e, TurnGrew)]


def frame_heard_at(window: int) -> float:
    """When the frame holding the first sample of `window` was received."""
    return T0 + (window * WINDOW // FRAME) * FRAME_S


def test_a_turn_starts_after_min_speech_and_ends_after_the_silence_window() -> None:
    events = listen(script((SILENCE, 20), (SPEECH, 30), (SILENCE, 20)))

    assert len(events) == 2
    started, ended = events
    assert started == TurnStarted(speech_offset_ms=20 * WINDOW_MS)
    assert isinstance(ended, TurnEnded)
    assert not ended.cut
    assert ended.speech_offset_ms == 20 * WINDOW_MS
    assert ended.speech_end_offset_ms == 50 * WINDOW_MS
    # 200 ms pre-roll + 30 speech windows + 200 ms trailing silence
    assert len(ended.audio) == PREROLL + 30 * WINDOW + TRAILING
    assert ended.audio[PREROLL] == 20  # the first speech window follows the pre-roll
    assert ended.audio[0] == (20 * WINDOW - PREROLL) // WINDOW
    assert ended.audio[-1] == (50 * WINDOW + TRAILING - 1) // WINDOW
    assert ended.speech_ended_at == frame_heard_at(50)


def test_the_turn_starts_only_after_min_speech_ms_of_speech() -> None:
    settings = MediaSettings(min_speech_ms=200)  # 7 windows of 32 ms
    assert listen(script((SILENCE, 5), (SPEECH, 6)), settings) == []
    assert listen(script((SILENCE, 5), (SPEECH, 7)), settings) == [
        TurnStarted(speech_offset_ms=5 * WINDOW_MS)
    ]


def test_a_short_blip_is_not_a_turn() -> None:
    events = listen(script((SILENCE, 10), (SPEECH, 4), (SILENCE, 30), (SPEECH, 3), (SILENCE, 5)))
    assert events == []


def test_a_wavering_onset_keeps_the_first_word() -> None:
    # Silero's scores for "Please book..." after a long silence: dips under the threshold
    # shorter than onset_gap_ms must not restart the onset, or "Please" is lost.
    onset = [0.68, 0.44, 0.50, 0.33, 0.49, 0.45, 0.32, 0.25, 0.70, 0.77, 0.75, 0.78]
    events = listen(script((SILENCE, 20)) + onset + script((SPEECH, 10), (SILENCE, 20)))
    assert events[0] == TurnStarted(speech_offset_ms=20 * WINDOW_MS)
    assert isinstance(events[1], TurnEnded)
    assert events[1].speech_offset_ms == 20 * WINDOW_MS


def test_a_pause_of_onset_gap_ms_before_confirmation_restarts_the_onset() -> None:
    settings = MediaSettings(onset_gap_ms=96)  # 3 windows
    events = listen(
        script((SILENCE, 5), (SPEECH, 2), (SILENCE, 3), (SPEECH, 10), (SILENCE, 20)), settings
    )
    assert events[0] == TurnStarted(speech_offset_ms=10 * WINDOW_MS)


def test_a_pause_shorter_than_the_end_of_turn_silence_keeps_one_turn() -> None:
    events = listen(script((SILENCE, 10), (SPEECH, 20), (SILENCE, 10), (SPEECH, 20), (SILENCE, 20)))

    assert [type(e) for e in events] == [TurnStarted, TurnEnded]
    ended = events[1]
    assert isinstance(ended, TurnEnded)
    assert ended.speech_end_offset_ms == 60 * WINDOW_MS
    assert ended.speech_ended_at == frame_heard_at(60)


def test_the_end_of_turn_silence_is_configurable() -> None:
    pause = script((SILENCE, 10), (SPEECH, 20), (SILENCE, 10), (SPEECH, 20), (SILENCE, 20))
    events = listen(pause, MediaSettings(end_of_turn_silence_ms=300, trailing_silence_ms=100))
    assert [type(e) for e in events] == [TurnStarted, TurnEnded, TurnStarted, TurnEnded]


def test_once_speaking_only_a_clear_silence_counts_as_silence() -> None:
    # Doubtful windows do not start a turn...
    assert listen(script((SILENCE, 5), (DOUBT, 30), (SILENCE, 20))) == []
    # ...but keep one going.
    events = listen(script((SILENCE, 5), (SPEECH, 10), (DOUBT, 20), (SILENCE, 20)))
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    assert ended.speech_end_offset_ms == 35 * WINDOW_MS


def test_a_turn_longer_than_the_longest_utterance_is_cut_and_listening_goes_on() -> None:
    long_speech = MAX_UTTERANCE_MS // WINDOW_MS + 100
    events = listen(script((SILENCE, 10), (SPEECH, long_speech), (SILENCE, 20)))

    assert [type(e) for e in events] == [TurnStarted, TurnEnded, TurnStarted, TurnEnded]
    _, cut, resumed, last = events
    assert isinstance(cut, TurnEnded)
    assert isinstance(resumed, TurnStarted)
    assert isinstance(last, TurnEnded)
    assert cut.cut
    assert len(cut.audio) <= MAX_UTTERANCE_MS * 16
    assert len(cut.audio) > (MAX_UTTERANCE_MS - WINDOW_MS) * 16
    assert resumed.speech_offset_ms == cut.speech_end_offset_ms
    assert last.speech_offset_ms == resumed.speech_offset_ms
    assert not last.cut
    # Nothing is heard twice: the second turn starts where the cut one stopped.
    assert last.audio[0] == cut.audio[-1] + 1


@pytest.mark.parametrize("frame", [160, 512, 2000])
def test_how_audio_is_chunked_does_not_change_the_turn(frame: int) -> None:
    probabilities = script((SILENCE, 20), (SPEECH, 30), (SILENCE, 20))
    detector = TurnDetector(vad=ScriptedVad(probabilities), settings=MediaSettings())
    audio = np.repeat(np.arange(len(probabilities), dtype=np.int16), WINDOW)
    events: list[TurnEvent] = []
    for start in range(0, len(audio), frame):
        events += detector.feed(audio[start : start + frame], frame_start=start, heard_at=T0)

    assert [type(e) for e in events] == [TurnStarted, TurnGrew, TurnGrew, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    assert len(ended.audio) == PREROLL + 30 * WINDOW + TRAILING


def test_offsets_count_from_where_listening_started() -> None:
    detector = TurnDetector(vad=ScriptedVad(script((SPEECH, 10))), settings=MediaSettings())
    events = detector.feed(
        np.zeros(10 * WINDOW, dtype=np.int16), frame_start=60 * 16_000, heard_at=T0
    )
    assert events == [TurnStarted(speech_offset_ms=60_000)]


def test_a_turn_goes_out_as_it_grows_and_whole_when_the_caller_pauses() -> None:
    settings = MediaSettings(partial_interval_ms=320, early_transcript_silence_ms=200)
    events = listen(script((SILENCE, 20), (SPEECH, 30), (SILENCE, 20)), settings, growth=True)

    grown = [e for e in events if isinstance(e, TurnGrew)]
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    assert [g.seq for g in grown] == list(range(len(grown)))
    assert all(g.speech_offset_ms == ended.speech_offset_ms for g in grown)
    # Once the turn is sure (min_speech_ms), then every 320 ms while speaking, and once
    # 200 ms (7 windows) into the silence.
    assert [g.paused for g in grown] == [False, False, False, True]
    assert [len(g.audio) for g in grown[:-1]] == [PREROLL + 7 * WINDOW, 10 * WINDOW, 10 * WINDOW]
    so_far = np.concatenate([g.audio for g in grown])
    assert len(so_far) == PREROLL + 30 * WINDOW + 7 * WINDOW
    # The chunks are the turn's audio: the utterance is their beginning, all its speech in.
    np.testing.assert_array_equal(so_far[: len(ended.audio)], ended.audio)
    assert ended.speech_end_ms == (PREROLL + 30 * WINDOW) // 16
    assert events.index(grown[-1]) < events.index(ended)


def test_a_caller_who_goes_on_after_a_pause_pauses_again() -> None:
    settings = MediaSettings(partial_interval_ms=0, early_transcript_silence_ms=128)
    events = listen(
        script((SILENCE, 10), (SPEECH, 20), (SILENCE, 8), (SPEECH, 20), (SILENCE, 20)),
        settings,
        growth=True,
    )

    grown = [e for e in events if isinstance(e, TurnGrew)]
    assert [(g.seq, g.paused) for g in grown] == [(0, True), (1, True)]
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    so_far = np.concatenate([g.audio for g in grown])
    spoken = ended.speech_end_ms * 16
    assert len(so_far) > spoken
    np.testing.assert_array_equal(so_far[:spoken], ended.audio[:spoken])


def test_nothing_goes_out_early_when_disabled() -> None:
    settings = MediaSettings(
        partial_interval_ms=0, early_transcript_silence_ms=500, end_of_turn_silence_ms=500
    )
    events = listen(script((SILENCE, 10), (SPEECH, 40), (SILENCE, 20)), settings, growth=True)

    assert [type(e) for e in events] == [TurnStarted, TurnEnded]


def test_a_blip_never_goes_out() -> None:
    settings = MediaSettings(partial_interval_ms=32, early_transcript_silence_ms=32)
    assert listen(script((SILENCE, 10), (SPEECH, 4), (SILENCE, 30)), settings, growth=True) == []
