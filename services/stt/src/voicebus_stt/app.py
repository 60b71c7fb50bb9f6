"""The STT worker: turns' audio in, partial and final transcripts out."""

from __future__ import annotations

import logging
import time
from typing import Annotated, assert_never

from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import Field

from voicebus_contracts import (
    CallAnsweredBy,
    CallEnded,
    CallStarted,
    CallStatusChanged,
    DtmfReceived,
    Envelope,
    PartialTranscript,
    Utterance,
    UtteranceChunk,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import CALLS, PARTIAL_TRANSCRIPTS, TRANSCRIPTS, UTTERANCES
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.service import worker_app
from voicebus_runtime.settings import BusSettings
from voicebus_stt.bundled_model import assemble_bundled_model
from voicebus_stt.choice import TranscriberChoice
from voicebus_stt.deepgram import DeepgramTranscriber
from voicebus_stt.instant import InstantRecognizer
from voicebus_stt.ports import SpeechRecognizer, UtteranceTranscriber
from voicebus_stt.settings import Provider, SttSettings
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


SttInput = Annotated[
    UtteranceChunk
    | Utterance
    | CallStarted
    | CallEnded
    | CallStatusChanged
    | DtmfReceived
    | CallAnsweredBy,
    Field(discriminator="type"),
]
"""Turns' audio, and every event of the calls topic (what STT does not act on is skipped)."""


def subscribe(broker: KafkaBroker, transcribers: TranscriberChoice, *, bus: BusSettings) -> None:
    """Give `broker` the STT subscriber, each call heard by its transcriber in `transcribers`."""

    # One subscriber for both topics (partitions assigned by range: a call's lifecycle and
    # audio reach the same worker).
    @broker.subscriber(
        UTTERANCES.name,
        CALLS.name,
        **consumer_options(
            GROUP,
            fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms,
            session_timeout_ms=bus.kafka_session_timeout_ms,
        ),
    )
    async def on_utterances_and_calls(env: Envelope[SttInput]) -> None:
        match env.event:
            case UtteranceChunk(turn_id=turn_id):
                try:
                    await transcribers.of(env.call_id).listen(env)  # type: ignore[arg-type]
                except Exception:
                    log.exception("call %s: chunk of turn %s not heard", env.call_id, turn_id)
            case Utterance():
                await transcribe(env)  # type: ignore[arg-type]  # narrowed by the match
            case CallStarted(agent_id=agent_id):
                transcribers.started(env.call_id, agent_id)
            case CallEnded():
                transcribers.ended(env.call_id)

    async def transcribe(env: Envelope[Utterance]) -> None:
        utterance = env.event
        started = time.perf_counter()
        try:
            transcript = await transcribers.of(env.call_id).transcribe(utterance)
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


def recognizer_for(settings: SttSettings, provider: Provider | None = None) -> SpeechRecognizer:
    """The local recognizer of `provider` (by default, VOICEBUS_STT_PROVIDER's)."""
    match provider or settings.provider:
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
    settings: SttSettings,
    provider: Provider | None = None,
    *,
    on_partial: PartialSink | None = None,
) -> UtteranceTranscriber:
    """The transcriber of `provider` (by default, VOICEBUS_STT_PROVIDER's); partial transcripts
    (where the provider makes them) go to `on_partial`."""
    provider = provider or settings.provider
    if provider != "deepgram":
        return Transcriber(recognizer=recognizer_for(settings, provider), on_partial=on_partial)
    if settings.deepgram_api_key is None:
        raise ValueError("the deepgram STT provider needs DEEPGRAM_API_KEY")
    log.info(
        "STT provider 'deepgram': model %s at %s", settings.deepgram_model, settings.deepgram_url
    )
    return DeepgramTranscriber(
        api_key=settings.deepgram_api_key.get_secret_value(),
        url=settings.deepgram_url,
        model=settings.deepgram_model,
        language=settings.language or None,
    )


def offered_providers(settings: SttSettings) -> list[Provider]:
    """What this worker offers agents: VOICEBUS_STT_PROVIDER's provider, and Deepgram too
    wherever DEEPGRAM_API_KEY is set."""
    offered: list[Provider] = [settings.provider]
    if settings.deepgram_api_key is not None and "deepgram" not in offered:
        offered.append("deepgram")
    return offered


def create_app(settings: SttSettings, *, bus: BusSettings) -> FastStream:
    """The STT worker, with its transcribers ready before it joins the bus."""
    broker = create_broker(bus)
    agents = AgentDirectory()
    agents.follow(broker)
    on_partial = partials_to(broker)
    transcribers = TranscriberChoice(
        default=settings.provider,
        transcribers={
            provider: transcriber_for(settings, provider, on_partial=on_partial)
            for provider in offered_providers(settings)
        },
        agents=agents,
    )
    log.info("STT providers offered to agents: %s", ", ".join(transcribers.providers))
    subscribe(broker, transcribers, bus=bus)
    app = worker_app(broker, service=SERVICE, bus=bus)
    app.after_shutdown(transcribers.close)
    return app
