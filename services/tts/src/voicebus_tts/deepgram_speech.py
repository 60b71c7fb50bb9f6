"""Deepgram Aura text to speech, streamed over its REST endpoint with the deepgram SDK.

`POST /v1/speak` streams the audio back while it is synthesized, so the first bytes arrive long
before the sentence is done; the SDK's raw response hands over the body piece by piece, and
leaving it closes the HTTP response, which stops the download. linear16 comes in a WAV container
unless `container=none` is asked for, so it is: the samples then arrive bare.
API reference: https://developers.deepgram.com/reference/text-to-speech/speak-request
Formats: https://developers.deepgram.com/docs/tts-media-output-settings

The speak WebSocket would keep one connection per reply, but it is meant for text arriving in
fragments; the agent already sends whole sentences, each of which the REST endpoint streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from voicebus_tts.pcm import Linear16Decoder
from voicebus_tts.ports import PcmChunk, Sentence

LINEAR16_RATES = frozenset({8_000, 16_000, 24_000, 32_000, 48_000})
"""The sample rates Deepgram speaks linear16 at."""


class DeepgramSpeechError(RuntimeError):
    """Deepgram refused to speak a sentence (a bad key or model, a quota, an outage)."""


class DeepgramSynthesizer:
    """SpeechSynthesizer on Deepgram Aura (mono linear16 at `sample_rate`); `voice` is an Aura
    model name such as "aura-2-thalia-en".

    Each sentence is one request, spoken on its own. Blank text is not sent (Deepgram refuses
    it, and it has nothing to say).
    """

    def __init__(
        self, api_key: str, *, base_url: str | None = None, sample_rate: int = 24_000
    ) -> None:
        if not api_key:
            raise ValueError("Deepgram speech needs an API key: set DEEPGRAM_API_KEY")
        if sample_rate not in LINEAR16_RATES:
            raise ValueError(
                f"Deepgram speaks linear16 at {sorted(LINEAR16_RATES)} Hz, not {sample_rate}"
            )
        production = DeepgramClientEnvironment.PRODUCTION
        self._client = AsyncDeepgramClient(
            api_key=api_key,
            environment=DeepgramClientEnvironment(
                base=base_url or production.base,
                production=production.production,
                agent=production.agent,
                agent_rest=production.agent_rest,
            ),
        )
        self._sample_rate = sample_rate

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        if not sentence.text.strip():
            return
        speech = self._client.speak.v1.audio.with_raw_response.generate(
            text=sentence.text,
            model=voice,
            encoding="linear16",
            container="none",
            sample_rate=self._sample_rate,
        )
        decoder = Linear16Decoder()
        try:
            # Leaving the block, even before the end, closes the response: the download stops.
            async with speech as response:
                async for piece in response.data:
                    samples = decoder.samples(piece)
                    if samples.size:
                        yield PcmChunk(samples=samples, sample_rate=self._sample_rate)
        except ApiError as refused:
            detail = refused.body.get("err_msg") if isinstance(refused.body, dict) else None
            raise DeepgramSpeechError(
                f"Deepgram refused to speak (model {voice!r}; check it and DEEPGRAM_API_KEY): "
                f"HTTP {refused.status_code} {detail or refused.body}"
            ) from refused
