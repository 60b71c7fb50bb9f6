"""End of turn on synthesized speech: how often the agent cuts a caller off, how long it waits.

Each utterance is spoken (eSpeak NG), some with a pause mid-sentence, and heard the way the
product hears it: media's turn detector with Silero VAD cuts it into turns, Whisper transcribes
each turn, and the agent's rule decides when to answer. Two rules are compared on the same
turns: answering every turn at once (VAD alone), and smart endpointing (a turn that trails off
is held while the caller goes on, or for `wait_ms` if they stay quiet).

Times are in the audio's own clock, from media's end-of-turn decisions; speech recognition's
compute is left out (it is the same under both rules), so "wait" is the silence the agent lets
pass after the caller's last word before it would start answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

import numpy as np

from voicebus_agent.endpointing import sounds_finished
from voicebus_contracts import SPEECH_16K
from voicebus_devstack.speech import speech_pcm16
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad
from voicebus_media.turns import TurnDetector as MediaTurnDetector
from voicebus_media.turns import TurnEnded, TurnStarted
from voicebus_stt.ports import SpeechRecognizer

FRAME_MS = 20
RATE = SPEECH_16K.sample_rate
LEAD_S, TAIL_S = 0.5, 3.0
PAUSED: tuple[tuple[str, str], ...] = (
    ("I would like to", "book a table for two people."),
    ("So I want to", "change my delivery address."),
    ("My order number is", "four five six seven."),
    ("Could you tell me about", "your opening hours?"),
    ("I was wondering if", "you deliver on Sundays."),
    ("Can I pay with", "a credit card?"),
)
"""Sentences with a pause where a caller thinks of what comes next."""
WHOLE: tuple[str, ...] = (
    "Please book a table for two people tomorrow evening.",
    "What time do you open on Saturday?",
    "I would like to cancel my appointment.",
    "Thank you, that is all.",
)


@dataclass(frozen=True)
class HeardTurn:
    """One turn as media cut it and Whisper heard it; times in seconds of the audio."""

    text: str
    started_at: float
    """When media confirmed the caller was speaking (SpeechStarted)."""
    decided_at: float
    """When media decided the turn was over (the end-of-turn silence had passed)."""


@dataclass(frozen=True)
class Outcome:
    cut_off: bool
    """The agent would have started answering before the caller's last word."""
    wait_s: float
    """From the caller's last word to the agent starting to answer."""


def answered_at(turns: list[HeardTurn], *, smart: bool, wait_s: float) -> float:
    """When the agent starts answering, the first time it does, under either rule."""
    held = ""
    for n, turn in enumerate(turns):
        text = f"{held} {turn.text}".strip()
        following = turns[n + 1] if n + 1 < len(turns) else None
        if not smart or sounds_finished(text):
            return turn.decided_at
        if following is None or following.started_at > turn.decided_at + wait_s:
            return turn.decided_at + wait_s  # the caller stayed quiet: answer what was held
        held = text  # the caller went on: the next turn joins this one
    raise ValueError("no turns")


def outcome(turns: list[HeardTurn], last_word_at: float, *, smart: bool, wait_s: float) -> Outcome:
    at = answered_at(turns, smart=smart, wait_s=wait_s)
    return Outcome(cut_off=at < last_word_at, wait_s=at - last_word_at)


def hear(
    parts: tuple[str, ...], pause_s: float, recognizer: SpeechRecognizer, vad: SileroVad
) -> tuple[list[HeardTurn], float]:
    """The turns media and Whisper make of `parts` said with `pause_s` between them, and when
    the last word ended."""
    silence = np.zeros(round(pause_s * RATE), np.int16)
    speech: list[np.ndarray] = [np.zeros(round(LEAD_S * RATE), np.int16)]
    for n, part in enumerate(parts):
        if n:
            speech.append(silence)
        speech.append(speech_pcm16(part))
    last_word_at = sum(len(piece) for piece in speech) / RATE
    audio = np.concatenate([*speech, np.zeros(round(TAIL_S * RATE), np.int16)])
    detector = MediaTurnDetector(vad=vad.new_detector(), settings=MediaSettings())
    frame = RATE * FRAME_MS // 1000
    turns: list[HeardTurn] = []
    started_at = 0.0
    for start in range(0, len(audio), frame):
        now = (start + frame) / RATE
        for event in detector.feed(audio[start : start + frame], frame_start=start, heard_at=now):
            if isinstance(event, TurnStarted):
                started_at = now
            elif isinstance(event, TurnEnded):
                text = recognizer.transcribe(event.audio.astype(np.float32) / 32768.0).text
                turns.append(HeardTurn(text=text, started_at=started_at, decided_at=now))
    return turns, last_word_at


def measure_endpointing(
    recognizer: SpeechRecognizer, *, pause_s: float, wait_s: float
) -> dict[str, object]:
    """Cut-off rate and mean wait of both rules over PAUSED (with `pause_s`) and WHOLE."""
    vad = SileroVad()
    heard = [hear(parts, pause_s, recognizer, vad) for parts in PAUSED]
    heard += [hear((sentence,), pause_s, recognizer, vad) for sentence in WHOLE]
    results: dict[str, object] = {
        "utterances": len(heard),
        "paused": len(PAUSED),
        "pause_ms": round(pause_s * 1000),
    }
    for rule, smart in (("vad_only", False), ("smart", True)):
        outcomes = [outcome(t, last, smart=smart, wait_s=wait_s) for t, last in heard if t]
        paused = outcomes[: len(PAUSED)]
        results[rule] = {
            "cut_off_rate": round(sum(o.cut_off for o in paused) / len(paused), 3),
            "mean_wait_ms": round(1000 * fmean(max(0.0, o.wait_s) for o in outcomes), 1),
        }
    return results
