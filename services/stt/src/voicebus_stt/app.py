"""The STT worker: turns' audio in, partial and final transcripts out."""

from __future__ import annotations

import logging
import time
from typing import assert_never

from faststream import FastStream
from faststream.kafka import KafkaBroker

from voicebus_contracts import (
    Envelope,
    PartialTranscript,
    Utterance,
    UtteranceChunk,
    UtteranceEvent,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import PARTIAL_TRANSCRIPTS, TRANSCRIPTS, UTTERANCES
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_stt.bundled_model import assemble_bundled_model
from voicebus_stt.deepgram import DeepgramTranscriber
from voicebus_stt.instant import InstantRecognizer
from voicebus_stt.ports import SpeechRecognizer, UtteranceTranscriber
from voicebus_stt.settings import SttSettings
from voicebus_stt.transcriber import PartialSink, Transcriber
from voicebus_stt.whisper import WhisperRecognizer

SERVICE = "stt"
GROUP = "stt"

log = logging.getLogger(__name__)


def create_broker(bus: BusSettings) -> KafkaBroker:
    return make_broker(bus.kafka_bootstrap, client_id=f"{SERVICE}-{bus.instance_id}")


def partials_to(broker: KafkaBroker) -> PartialSink:
    """Publishes partial transcripts on `broker`, each named by the chunk it heard last."""

    async def publish_partial(cause: Envelope[UtteranceChunk], partial: PartialTranscript) -> None:
        # A display's refresh, not on the voice path: no wait for the broker's ack.
        partial_env = envelope(
            partial,
            call_id=cause.call_id,
            producer=SERVICE,
            stamps=cause.stamps,
            event_id=derived_id(cause.event_id, "partial"),
        )
        await publish(broker, PARTIAL_TRANSCRIPTS, partial_env, confirm=False)

    return publish_partial


def subscribe(broker: KafkaBroker, transcriber: UtteranceTranscriber, *, bus: BusSettings) -> None:
    """Give `broker` the STT subscriber, transcribing with `transcriber`."""

    @broker.subscriber(
        UTTERANCES.name, **consumer_options(GROUP, fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms)
    )
    async def on_utterances(env: Envelope[UtteranceEvent]) -> None:
        if isinstance(env.event, UtteranceChunk):
            try:
                await transcriber.listen(env)  # type: ignore[arg-type]  # narrowed just above
            except Exception:
                log.exception("call %s: chunk of turn %s not heard", env.call_id, env.event.turn_id)
            return
        await transcribe(env)  # type: ignore[arg-type]  # the other kind is an Utterance

    async def transcribe(env: Envelope[Utterance]) -> None:
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


def transcriber_for(
    settings: SttSettings, *, on_partial: PartialSink | None = None
) -> UtteranceTranscriber:
    """The transcriber of the provider VOICEBUS_STT_PROVIDER names; partial transcripts (where
    the provider makes them) go to `on_partial`."""
    if settings.provider != "deepgram":
        return Transcriber(recognizer=recognizer_for(settings), on_partial=on_partial)
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
    broker = create_broker(bus)
    transcriber = transcriber_for(settings, on_partial=partials_to(broker))
    subscribe(broker, transcriber, bus=bus)
    app = worker_app(broker, service=SERVICE, bus=bus)
    app.after_shutdown(transcriber.close)
    return app
