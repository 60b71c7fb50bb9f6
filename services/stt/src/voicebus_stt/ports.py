"""The STT service's ports: what turns an utterance into its transcript, and what hears speech."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voicebus_contracts import Envelope, FinalTranscript, Utterance, UtteranceChunk


@dataclass(frozen=True)
class Transcription:
    """What a recognizer heard: the text (empty when it heard no words) and its language."""

    text: str
    language: str | None


class SpeechRecognizer(Protocol):
    """Transcribes one complete utterance.

    Blocking and CPU-bound: callers run it off the event loop, one utterance at a time.
    """

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcription:
        """Transcribe mono float32 samples in [-1, 1] at 16 kHz."""
        ...

    def sketch(self, audio: npt.NDArray[np.float32]) -> Transcription:
        """Like `transcribe`, but quicker and possibly rougher: for partial transcripts of a
        turn still under way."""
        ...


class UtteranceTranscriber(Protocol):
    """Turns one caller utterance into its final transcript: the one interface the app calls.

    Async because providers differ in what they wait on: a local recognizer waits on the CPU
    (`Transcriber` runs it on a worker thread), a streaming service on the network.
    """

    async def listen(self, chunk: Envelope[UtteranceChunk]) -> None:
        """Take more of a turn still under way (chunks come in order, but may repeat or skip);
        returns at once, while what it starts (partial transcripts) goes on."""
        ...

    async def transcribe(self, utterance: Utterance) -> FinalTranscript:
        """The transcript of `utterance`'s turn; raises when the provider could not hear it."""
        ...

    def close(self) -> None:
        """Release what the transcriber holds between utterances (threads, connections)."""
        ...
