"""eSpeak NG, the local default voice: libespeak-ng driven through ctypes.

The library comes from the espeakng-loader wheel, so nothing is installed system-wide. It is one
process-wide engine that is not thread-safe: synthesis runs one at a time under a lock, in a worker
thread, and each buffer the engine fills is handed over as soon as it is full.
API reference: https://github.com/espeak-ng/espeak-ng/blob/master/src/include/espeak-ng/speak_lib.h
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
from collections.abc import AsyncIterator, Callable

import espeakng_loader
import numpy as np
import numpy.typing as npt

from voicebus_tts.ports import PcmChunk, Sentence

DEFAULT_VOICE = "en-us"
DEFAULT_RATE_WPM = 175

_BUFFER_MS = 60
"""Audio per engine callback: what the first chunk of a sentence waits for."""

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it, a failed initialization calls exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_EE_OK = 0

# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events); return 1 to abort.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

SampleSink = Callable[[npt.NDArray[np.int16]], bool]
"""Receives each buffer of samples; returns False to stop the synthesis."""


class _Engine:
    """The process's libespeak-ng, initialized once."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            _BUFFER_MS,
            espeakng_loader.get_data_path().encode(),
            _INITIALIZE_DONT_EXIT,
        )
        if sample_rate <= 0:
            raise RuntimeError(f"libespeak-ng failed to initialize (error {sample_rate})")
        self._lib = lib
        self.sample_rate: int = sample_rate
        # The library keeps only a raw pointer: the callback object must outlive every synthesis.
        self._callback = _SynthCallback(self._on_samples)
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()
        self._sink: SampleSink | None = None
        self._voice: str | None = None
        self._rate_wpm: int | None = None

    def synthesize(self, text: str, *, voice: str, rate_wpm: int, sink: SampleSink) -> None:
        """Speak `text`, handing each buffer to `sink`; blocks until done, one caller at a time."""
        encoded = text.encode()
        with self._lock:
            self._select(voice, rate_wpm)
            self._sink = sink
            try:
                error = self._lib.espeak_Synth(
                    encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
            finally:
                self._sink = None
        if error != _EE_OK:
            raise RuntimeError(f"eSpeak NG failed to synthesize (error {error})")

    def _select(self, voice: str, rate_wpm: int) -> None:
        if voice != self._voice:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ValueError(f"unknown eSpeak NG voice {voice!r}")
            self._voice = voice
            self._rate_wpm = None  # a new voice resets the rate
        if rate_wpm != self._rate_wpm:
            self._lib.espeak_SetParameter(_RATE, rate_wpm, 0)
            self._rate_wpm = rate_wpm

    def _on_samples(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        if count <= 0 or not wav or self._sink is None:
            return 0
        samples = np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16)
        return 0 if self._sink(samples) else 1


_ENGINE_START = threading.Lock()


@functools.cache
def _started_engine() -> _Engine:
    return _Engine()


def _engine() -> _Engine:
    with _ENGINE_START:
        return _started_engine()


def synthesize_pcm(
    text: str, voice: str = DEFAULT_VOICE, *, rate_wpm: int = DEFAULT_RATE_WPM
) -> tuple[npt.NDArray[np.int16], int]:
    """Speak `text` whole: (mono int16 samples, sample rate). Blocking and thread-safe."""
    engine = _engine()
    buffers: list[npt.NDArray[np.int16]] = []

    def keep(samples: npt.NDArray[np.int16]) -> bool:
        buffers.append(samples)
        return True

    engine.synthesize(text, voice=voice, rate_wpm=rate_wpm, sink=keep)
    return np.concatenate(buffers) if buffers else np.zeros(0, np.int16), engine.sample_rate


class EspeakSynthesizer:
    """SpeechSynthesizer on the local eSpeak NG engine (22050 Hz mono).

    Synthesis runs in a worker thread so the event loop stays free; each engine buffer reaches
    the caller as soon as it is filled. Syntheses from every instance in the process queue up
    for the one engine.
    """

    def __init__(self, *, rate_wpm: int = DEFAULT_RATE_WPM) -> None:
        self._rate_wpm = rate_wpm

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        text = sentence.text
        engine = await asyncio.to_thread(_engine)
        loop = asyncio.get_running_loop()
        buffers: asyncio.Queue[npt.NDArray[np.int16] | None] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(samples: npt.NDArray[np.int16]) -> bool:
            if stop.is_set():
                return False
            try:
                loop.call_soon_threadsafe(buffers.put_nowait, samples)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return False
            return True

        def run() -> None:
            if not stop.is_set():
                engine.synthesize(text, voice=voice, rate_wpm=self._rate_wpm, sink=hand_over)

        job = asyncio.ensure_future(asyncio.to_thread(run))
        job.add_done_callback(lambda _: buffers.put_nowait(None))
        try:
            while (samples := await buffers.get()) is not None:
                yield PcmChunk(samples=samples, sample_rate=engine.sample_rate)
        finally:
            stop.set()
            await job  # raises what the synthesis raised; after a stop it ends within a buffer
