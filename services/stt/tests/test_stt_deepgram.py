"""The Deepgram provider: the real deepgram-sdk client against a local server speaking Deepgram's
live protocol (https://developers.deepgram.com/reference/speech-to-text/listen-streaming)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from faststream.kafka import TestKafkaBroker
from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    AudioFormat,
    Envelope,
    FinalTranscript,
    StageStamps,
    Utterance,
    envelope,
)
from voicebus_contracts.topics import TRANSCRIPTS, UTTERANCES
from voicebus_runtime.bus import publish
from voicebus_runtime.settings import BusSettings
from voicebus_stt.app import create_broker, recognizer_for, subscribe, transcriber_for
from voicebus_stt.choice import TranscriberChoice
from voicebus_stt.deepgram import DeepgramTranscriber, DeepgramUnavailableError
from voicebus_stt.settings import SttSettings

API_KEY = "test-key"
HEARD = "I would like to book a table for two."
BYTES_PER_SECOND = 32_000  # linear16, 16 kHz, mono


@dataclass
class LiveStream:
    """What the fake received on one live connection."""

    query: dict[str, str]
    authorization: str | None
    audio: bytearray = field(default_factory=bytearray)
    controls: list[str] = field(default_factory=list)


def _results(
    text: str, *, start: float, duration: float, is_final: bool, speech_final: bool = False
) -> str:
    words = text.split()
    step = duration / max(len(words), 1)
    return json.dumps(
        {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": False,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98,
                        "words": [
                            {
                                "word": word.strip(".,").lower(),
                                "start": start + i * step,
                                "end": start + (i + 1) * step,
                                "confidence": 0.98,
                                "punctuated_word": word,
                            }
                            for i, word in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": str(uuid.uuid4()),
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": str(uuid.uuid4()),
            },
        }
    )


def _metadata(duration: float) -> str:
    return json.dumps(
        {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": "0" * 64,
            "created": "2025-01-01T00:00:00.000Z",
            "duration": duration,
            "channels": 1,
        }
    )


class FakeDeepgram:
    """Deepgram's live endpoint, hearing `heard` in whatever audio it is sent.

    After the first audio message it sends an interim result (the first two words, unpunctuated);
    on `CloseStream` the final results (the words in two segments), then `Metadata`, then closes.
    The first `drops` connections are cut (no close frame) when their first audio arrives.
    """

    def __init__(self, *, heard: str, drops: int) -> None:
        self.heard = heard
        self.drops = drops
        self.handshakes = 0
        self.url = ""
        self.streams: list[LiveStream] = []

    def check_key(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        if urlsplit(request.path).path != "/v1/listen":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        if request.headers.get("Authorization") != f"Token {API_KEY}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid credentials\n")
        return None

    async def listen(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        stream = LiveStream(
            query=dict(parse_qsl(urlsplit(ws.request.path).query)),
            authorization=ws.request.headers.get("Authorization"),
        )
        self.streams.append(stream)
        drop = self.drops > 0
        if drop:
            self.drops -= 1
        async for message in ws:
            if isinstance(message, bytes):
                first = not stream.audio
                stream.audio += message
                if drop:
                    ws.transport.abort()
                    return
                if first:
                    interim = " ".join(self.heard.lower().strip(".").split()[:2])
                    await ws.send(_results(interim, start=0.0, duration=0.1, is_final=False))
                continue
            control = json.loads(message)["type"]
            stream.controls.append(control)
            if control == "CloseStream":
                await self._send_finals(ws, duration=len(stream.audio) / BYTES_PER_SECOND)
                await ws.close()
                return

    async def _send_finals(self, ws: ServerConnection, *, duration: float) -> None:
        words = self.heard.split()
        half = len(words) // 2
        segments = [" ".join(words[:half]), " ".join(words[half:])]
        for i, segment in enumerate(segments):
            await ws.send(
                _results(
                    segment,
                    start=i * duration / 2,
                    duration=duration / 2,
                    is_final=True,
                    speech_final=i == len(segments) - 1,
                )
            )
        await ws.send(_metadata(duration))


@asynccontextmanager
async def fake_deepgram(*, heard: str = HEARD, drops: int = 0) -> AsyncIterator[FakeDeepgram]:
    fake = FakeDeepgram(heard=heard, drops=drops)
    async with serve(fake.listen, "127.0.0.1", 0, process_request=fake.check_key) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}"
        yield fake


def _transcriber(url: str, **options: Any) -> DeepgramTranscriber:
    return DeepgramTranscriber(
        api_key=options.pop("api_key", API_KEY),
        url=url,
        model="nova-3",
        language="en",
        backoff_s=0.0,
        **options,
    )


def _utterance(fmt: AudioFormat = SPEECH_16K, turn_id: str = "turn-1") -> Utterance:
    size = fmt.sample_rate * fmt.bytes_per_sample * fmt.channels // 2  # half a second
    audio = (bytes(range(256)) * (size // 256 + 1))[:size]
    return Utterance(turn_id=turn_id, audio=audio, format=fmt, duration_ms=500)


async def test_an_utterance_comes_back_as_its_final_transcript_and_interims_go_to_the_hook() -> (
    None
):
    interims: list[tuple[str, str]] = []
    utterance = _utterance(turn_id="turn-7")
    async with fake_deepgram() as fake:
        transcriber = _transcriber(
            fake.url, on_interim=lambda u, text: interims.append((u.turn_id, text))
        )
        transcript = await transcriber.transcribe(utterance)

    assert transcript == FinalTranscript(
        turn_id="turn-7", text=HEARD, language="en", duration_ms=500
    )
    assert interims == [("turn-7", "i would")]
    [stream] = fake.streams
    assert stream.authorization == f"Token {API_KEY}"
    assert stream.query == {
        "model": "nova-3",
        "language": "en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
        "interim_results": "true",
        "punctuate": "true",
    }
    assert bytes(stream.audio) == utterance.audio
    assert stream.controls == ["CloseStream"]


async def test_telephone_audio_is_streamed_as_16k_linear16() -> None:
    async with fake_deepgram() as fake:
        await _transcriber(fake.url).transcribe(_utterance(TELEPHONE))

    [stream] = fake.streams
    assert abs(len(stream.audio) - BYTES_PER_SECOND // 2) <= 8  # 0.5 s, give or take a sample


async def test_a_dropped_connection_is_retried_with_the_whole_utterance() -> None:
    utterance = _utterance()
    async with fake_deepgram(drops=1) as fake:
        transcript = await _transcriber(fake.url).transcribe(utterance)

    assert transcript.text == HEARD
    dropped, retried = fake.streams
    assert dropped.controls == []
    assert bytes(retried.audio) == utterance.audio


async def test_a_connection_that_keeps_dropping_gives_a_clear_error() -> None:
    async with fake_deepgram(drops=10) as fake:
        with pytest.raises(DeepgramUnavailableError, match="turn turn-1 in 3 attempts"):
            await _transcriber(fake.url, attempts=3).transcribe(_utterance())

    assert len(fake.streams) == 3


async def test_a_refused_key_is_not_retried() -> None:
    async with fake_deepgram() as fake:
        with pytest.raises(DeepgramUnavailableError, match="refused turn turn-1: HTTP 401"):
            await _transcriber(fake.url, api_key="wrong-key").transcribe(_utterance())

    assert fake.handshakes == 1
    assert fake.streams == []


async def test_an_unreachable_deepgram_gives_a_clear_error() -> None:
    async with fake_deepgram() as fake:
        url = fake.url  # closed when the block ends: nothing listens there any more
    with pytest.raises(DeepgramUnavailableError, match="in 2 attempts"):
        await _transcriber(url, attempts=2).transcribe(_utterance())


async def test_the_stt_worker_publishes_the_deepgram_transcript() -> None:
    async with fake_deepgram() as fake:
        settings = SttSettings(provider="deepgram", deepgram_api_key=API_KEY, deepgram_url=fake.url)
        transcriber = transcriber_for(settings)
        bus = BusSettings(instance_id="test")
        broker = create_broker(bus)
        subscribe(
            broker,
            TranscriberChoice(default="deepgram", transcribers={"deepgram": transcriber}),
            bus=bus,
        )
        transcripts: list[Envelope[FinalTranscript]] = []

        @broker.subscriber(TRANSCRIPTS.name)
        async def on_transcripts(env: Envelope[FinalTranscript]) -> None:
            transcripts.append(env)

        async with TestKafkaBroker(broker) as running:
            await publish(
                running,
                UTTERANCES,
                envelope(
                    _utterance(turn_id="turn-3"),
                    call_id="call-1",
                    producer="media",
                    stamps=StageStamps(speech_ended=1000.0, turn_ended=1000.5),
                ),
            )
        transcriber.close()

    [transcript] = transcripts
    assert transcript.call_id == "call-1"
    assert transcript.event == FinalTranscript(
        turn_id="turn-3", text=HEARD, language="en", duration_ms=500
    )


def test_the_deepgram_provider_needs_deepgram_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.setenv("VOICEBUS_STT_PROVIDER", "deepgram")
    with pytest.raises(ValidationError, match="DEEPGRAM_API_KEY must be set"):
        SttSettings()

    monkeypatch.setenv("DEEPGRAM_API_KEY", "from-env")
    settings = SttSettings()
    assert settings.deepgram_api_key is not None
    assert settings.deepgram_api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)
    assert (settings.deepgram_model, settings.deepgram_url) == ("nova-3", "wss://api.deepgram.com")


def test_the_deepgram_url_must_be_a_websocket_url() -> None:
    with pytest.raises(ValidationError, match="VOICEBUS_STT_DEEPGRAM_URL must start with ws"):
        SttSettings(deepgram_url="https://api.deepgram.com")


def test_deepgram_is_not_a_local_recognizer() -> None:
    with pytest.raises(ValueError, match="over the network"):
        recognizer_for(SttSettings(provider="deepgram", deepgram_api_key=API_KEY))
