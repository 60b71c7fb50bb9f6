"""OpenAI text to speech, streamed: each sentence's audio is handed over as its bytes arrive.

The speech endpoint answers `response_format="pcm"` with raw 16-bit little-endian mono PCM at
24 kHz, streamed while it is synthesized; the openai SDK's streaming response reads it piece by
piece and closes the HTTP response (stopping the download) when the caller stops listening.
API reference: https://platform.openai.com/docs/api-reference/audio/createSpeech
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from openai import APIStatusError, AsyncOpenAI

from voicebus_tts.pcm import Linear16Decoder
from voicebus_tts.ports import PcmChunk, Sentence

SAMPLE_RATE = 24_000
"""The rate of OpenAI's `pcm` format, fixed by the API."""


class OpenAiSpeechError(RuntimeError):
    """OpenAI refused to speak a sentence (a bad key, model or voice, a quota, an outage)."""


class OpenAiSynthesizer:
    """SpeechSynthesizer on OpenAI's speech endpoint (24 kHz mono); `voice` is an OpenAI voice
    name such as "alloy" or "coral".

    Each sentence is one request: the endpoint keeps no context between requests, so a reply's
    sentences are spoken independently. Blank text is not sent (it has nothing to say).
    """

    def __init__(
        self, api_key: str, *, model: str = "gpt-4o-mini-tts", base_url: str | None = None
    ) -> None:
        if not api_key:
            raise ValueError("OpenAI speech needs an API key: set OPENAI_API_KEY")
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url)
        self._model = model

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        if not sentence.text.strip():
            return
        speech = self._client.audio.speech.with_streaming_response.create(
            model=self._model, voice=voice, input=sentence.text, response_format="pcm"
        )
        decoder = Linear16Decoder()
        try:
            # Leaving the block, even before the end, closes the response: the download stops.
            async with speech as response:
                async for piece in response.iter_bytes():
                    samples = decoder.samples(piece)
                    if samples.size:
                        yield PcmChunk(samples=samples, sample_rate=SAMPLE_RATE)
        except APIStatusError as refused:
            raise OpenAiSpeechError(
                f"OpenAI refused to speak (model {self._model!r}, voice {voice!r}; check them "
                f"and OPENAI_API_KEY): {refused.message}"
            ) from refused
