"""The STT worker: utterances in, final transcripts out."""

from __future__ import annotations

import logging
import time
from typing import assert_never

from faststream import FastStream
from faststream.kafka import KafkaBroker

from voicebus_contracts import Envelope, Utterance, derived_id, envelope
from voicebus_contracts.topics import TRANSCRIPTS, UTTERANCES
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_stt.bundled_model import assemble_bundled_model
from voicebus_stt.deepgram import DeepgramTranscriber
from voicebus_stt.instant import InstantRecognizer
from voicebus_stt.ports import SpeechRecognizer, UtteranceTranscriber
from voicebus_stt.settings import SttSettings
from voicebus_stt.transcriber import Transcriber
from voicebus_stt.whisper import WhisperRecognizer

SERVICE = "stt"
GROUP = "stt"

log = logging.getLogger(__name__)


def create_broker(transcriber: UtteranceTranscriber, *, bus: BusSettings) -> KafkaBroker:
    """The broker with the STT subscriber, transcribing with `transcriber`."""
    broker = make_broker(bus.kafka_bootstrap, client_id=f"{SERVICE}-{bus.instance_id}")

    @broker.subscriber(
        UTTERANCES.name, **consumer_options(GROUP, fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms)
    )
    async def on_utterances(env: Envelope[Utterance]) -> None:
        utterance = env.event
        started = time.perf_counter()
        try:
            transcript = await transcriber.transcribe(utterance)
        except Exception:
            log.exception(
                "call %s turn %s: utterance not transcribed, skipped",
                env.call_id,
                utterance.turn_id,
            )
            return
        log.info(
            "call %s turn %s: %d ms of speech transcribed in %.0f ms, %d chars",
            env.call_id,
            utterance.turn_id,
            utterance.duration_ms,
            (time.perf_counter() - started) * 1000.0,
            len(transcript.text),
        )
        await publish(
            broker,
            TRANSCRIPTS,
            envelope(
                transcript,
                call_id=env.call_id,
                producer=SERVICE,
                stamps=env.stamps.stamp(transcribed=time.time()),
                event_id=derived_id(env.event_id, "transcript"),
            ),
        )

    return broker


def load_recognizer(settings: SttSettings) -> WhisperRecognizer:
    """The configured Whisper model, loaded and warmed up (takes seconds)."""
    started = time.perf_counter()
    model_dir = settings.model_dir or assemble_bundled_model(settings.model_cache_dir)
    recognizer = WhisperRecognizer(
        model_dir=model_dir,
        cpu_threads=settings.cpu_threads,
        beam_size=settings.beam_size,
        language=settings.language,
    )
    log.info("whisper model %s ready in %.1f s", model_dir, time.perf_counter() - started)
    return recognizer


def recognizer_for(settings: SttSettings) -> SpeechRecognizer:
    """The local recognizer VOICEBUS_STT_PROVIDER names; Whisper is loaded only if chosen."""
    match settings.provider:
        case "whisper":
            return load_recognizer(settings)
        case "instant":
            log.warning(
                "STT provider 'instant' (benchmarks only): every utterance is heard as %r",
                settings.instant_text,
            )
            return InstantRecognizer(text=settings.instant_text, language=settings.language or None)
        case "deepgram":
            raise ValueError("the deepgram provider transcribes over the network, not on this host")
        case unknown:
            assert_never(unknown)


def transcriber_for(settings: SttSettings) -> UtteranceTranscriber:
    """The transcriber of the provider VOICEBUS_STT_PROVIDER names."""
    if settings.provider != "deepgram":
        return Transcriber(recognizer=recognizer_for(settings))
    assert settings.deepgram_api_key is not None  # SttSettings requires it for deepgram
    log.info(
        "STT provider 'deepgram': model %s at %s", settings.deepgram_model, settings.deepgram_url
    )
    return DeepgramTranscriber(
        api_key=settings.deepgram_api_key.get_secret_value(),
        url=settings.deepgram_url,
        model=settings.deepgram_model,
        language=settings.language or None,
    )


def create_app(settings: SttSettings, *, bus: BusSettings) -> FastStream:
    """The STT worker, with its transcriber ready before it joins the bus."""
    transcriber = transcriber_for(settings)
    app = worker_app(create_broker(transcriber, bus=bus), service=SERVICE, bus=bus)
    app.after_shutdown(transcriber.close)
    return app
