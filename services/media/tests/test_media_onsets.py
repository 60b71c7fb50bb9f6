"""A turn keeps its onset, however the caller's speech falls across the frames: with the real
Silero VAD, an eSpeak sentence whose soft first syllable is sometimes confirmed late."""

from __future__ import annotations

import numpy as np
import pytest

from voicebus_contracts import TELEPHONE, InboundAudioFrame, Utterance, envelope
from voicebus_devstack.speech import telephone_speech
from voicebus_media.calls import Calls
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad

FRAME_BYTES = 160
SILENCE = b"\xff"  # mu-law
QUIET = 100
"""Samples below this are silence (the speech peaks in the thousands)."""


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


@pytest.mark.parametrize("lead_frames", range(340, 364))
def test_the_utterance_starts_before_the_speech_in_every_frame_alignment(
    vad: SileroVad, lead_frames: int
) -> None:
    speech = telephone_speech("Please book a table for two people tomorrow evening.")
    audio = SILENCE * (FRAME_BYTES * lead_frames) + speech + SILENCE * 16_000
    calls = Calls(vad=vad, settings=MediaSettings())
    utterances = []
    for seq, start in enumerate(range(0, len(audio), FRAME_BYTES)):
        frame = InboundAudioFrame(
            seq=seq, audio=audio[start : start + FRAME_BYTES], format=TELEPHONE, received_at=0.0
        )
        heard = calls.hear(envelope(frame, call_id="CA-onset", producer="test"))
        utterances += [env.event for env in heard if isinstance(env.event, Utterance)]

    [utterance] = utterances
    samples = np.abs(np.frombuffer(utterance.audio, "<i2").astype(np.int32))
    # Silence before the first loud sample: the onset ("Please") is whole.
    assert np.argmax(samples > QUIET) >= 16 * 50  # at least 50 ms of it
