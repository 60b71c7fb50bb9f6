"""A local Deepgram text-to-speech REST endpoint for tests: Aura's `POST /v1/speak`, streamed.

`FakeDeepgramSpeak` serves `POST /v1/speak` on 127.0.0.1 and a free port, as Deepgram does
(https://developers.deepgram.com/reference/text-to-speech/speak-request): the key in an
`Authorization: Token <key>` header, the options in the query string (`model`, `encoding`,
`sample_rate`, `container`), `{"text": ...}` as the JSON body, and the audio streamed back as it
is synthesized. It speaks only linear16: a tone as long as the text would take to say, at the
requested rate, in pieces as `voice` (a `FakeVoice`) says; like Deepgram's REST API it wraps
linear16 in a WAV header unless asked for `container=none`. Refusals carry Deepgram's error body
(`err_code`, `err_msg`, `request_id`). Each request is kept in `speeches`, query included. Point
the deepgram SDK at it:

    environment = DeepgramClientEnvironment(base=fake.base_url, ...)
    client = AsyncDeepgramClient(api_key=fake.api_key, environment=environment)
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voicebus_devstack.asgi import LocalFake
from voicebus_devstack.fake_openai import FakeVoice, SpeechStream

LINEAR16_RATES = frozenset({8_000, 16_000, 24_000, 32_000, 48_000})
"""The sample rates Deepgram offers for linear16:
https://developers.deepgram.com/docs/tts-media-output-settings#audio-format-combinations"""
DEFAULT_SAMPLE_RATE = 24_000


@dataclass
class FakeDeepgramSpeak(LocalFake):
    """Use as `async with FakeDeepgramSpeak() as fake:`; `base_url` is set once entered."""

    api_key: str = "dg-test"
    base_url: str = ""
    voice: FakeVoice = field(default_factory=FakeVoice)
    speeches: list[SpeechStream] = field(default_factory=list)

    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/speak", self._speak, methods=["POST"])])

    async def _speak(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Token {self.api_key}":
            return _refusal("INVALID_AUTH", "Invalid credentials.", status_code=401)
        body = await request.json()
        speech = SpeechStream(body=body, query=dict(request.query_params))
        self.speeches.append(speech)
        query = speech.query
        if query.get("encoding", "linear16") != "linear16":
            return _refusal("UNSUPPORTED_AUDIO_FORMAT", "this fake only speaks linear16")
        rate = query.get("sample_rate", str(DEFAULT_SAMPLE_RATE))
        if not rate.isdigit() or int(rate) not in LINEAR16_RATES:
            return _refusal("UNSUPPORTED_AUDIO_FORMAT", f"Unsupported sample rate {rate}.")
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            return _refusal("INVALID_QUERY_PARAMETER", "Text must not be empty.")
        audio = self.voice.tone(body["text"], int(rate))
        if wav := query.get("container", "wav") == "wav":
            audio = _wav_header(len(audio), int(rate)) + audio
        media_type = "audio/wav" if wav else "audio/l16"
        return StreamingResponse(speech.send(audio, self.voice), media_type=media_type)


def _refusal(code: str, message: str, *, status_code: int = 400) -> JSONResponse:
    body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status_code)


def _wav_header(data_bytes: int, sample_rate: int) -> bytes:
    """The 44-byte RIFF header of mono PCM16 audio."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        data_bytes,
    )
