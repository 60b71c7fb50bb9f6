"""One local recognizer shared by every call of a worker: one thread, the most urgent work first.

A turn's final transcript is on the voice path; a draft taken at the caller's pause may become
it; a sketch only refreshes a partial transcript. So a final never waits behind queued drafts or
sketches, only behind the one recognition already running.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from voicebus_stt.ports import SpeechRecognizer, Transcription

Audio = npt.NDArray[np.float32]


class Urgency(enum.IntEnum):
    FINAL = 0
    """A turn is over and the caller waits for the answer."""
    DRAFT = 1
    """The caller paused: the turn may be over."""
    SKETCH = 2
    """The caller is still speaking: a partial transcript."""


@dataclass(order=True)
class _Job:
    urgency: Urgency
    order: int
    audio: Callable[[], Audio | None] = field(compare=False)
    """The audio to hear, taken when the job runs; None: nothing left to do."""
    heard: asyncio.Future[Transcription | None] = field(compare=False)


class Recognition:
    """Runs recognitions on one worker thread, most urgent first, in order within an urgency."""

    def __init__(self, recognizer: SpeechRecognizer) -> None:
        self._recognizer = recognizer
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-recognizer")
        self._jobs: asyncio.PriorityQueue[_Job] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._runner: asyncio.Task[None] | None = None

    async def hear(self, audio: Audio) -> Transcription:
        """Transcribe a finished turn, ahead of any queued draft or sketch."""
        heard = await self.submit(Urgency.FINAL, lambda: audio)
        assert heard is not None  # the audio is given, so it is heard
        return heard

    def submit(
        self, urgency: Urgency, audio: Callable[[], Audio | None]
    ) -> asyncio.Future[Transcription | None]:
        """Queue a recognition; `audio` is called when its turn comes (None skips it)."""
        heard: asyncio.Future[Transcription | None] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_Job(urgency, next(self._order), audio, heard))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="stt-recognition")
        return heard

    async def _run(self) -> None:
        """Work through the queue; the task ends when it is empty (the next job starts one)."""
        loop = asyncio.get_running_loop()
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if job.heard.cancelled():
                continue
            try:
                audio = job.audio()
                if audio is None:
                    heard = None
                else:
                    hear = (
                        self._recognizer.sketch
                        if job.urgency is Urgency.SKETCH
                        else self._recognizer.transcribe
                    )
                    heard = await loop.run_in_executor(self._worker, hear, audio)
            except Exception as failed:
                if not job.heard.done():
                    job.heard.set_exception(failed)
            else:
                if not job.heard.done():
                    job.heard.set_result(heard)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        while not self._jobs.empty():
            self._jobs.get_nowait().heard.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)
