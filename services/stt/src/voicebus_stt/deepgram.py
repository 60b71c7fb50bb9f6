"""Speech recognition with Deepgram's live (streaming) API, over its WebSocket.

Each utterance gets its own live connection: its audio is streamed in chunks, then `CloseStream`
asks Deepgram to flush every final result, send `Metadata` and close. A connection that drops
before `Metadata` lost some of the turn, so the whole utterance is sent again on a new connection.
Protocol: https://developers.deepgram.com/reference/speech-to-text/listen-streaming
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.socket_client import AsyncV1SocketClient
from deepgram.listen.v1.types import ListenV1Error, ListenV1Metadata, ListenV1Results
from websockets.exceptions import WebSocketException

from voicebus_contracts import SPEECH_16K, Envelope, FinalTranscript, Utterance, UtteranceChunk
from voicebus_stt.transcriber import final_transcript, speech_pcm16

log = logging.getLogger(__name__)

CHUNK_BYTES = 3_200
"""100 ms of PCM16 at 16 kHz: Deepgram recommends streaming 20 to 100 ms per message."""

InterimHandler = Callable[[Utterance, str], None]
"""Called with each interim (not yet final) transcript of an utterance, as Deepgram sends it."""


class DeepgramUnavailableError(RuntimeError):
    """Deepgram did not transcribe an utterance: refused it, or failed on every attempt."""


class _StreamFailedError(Exception):
    """The live stream ended before all of the turn's results: dropped, or a Deepgram error."""


def log_interim(utterance: Utterance, text: str) -> None:
    """Default interim handler: partial transcripts are only logged until they are published."""
    log.debug("turn %s: interim %r", utterance.turn_id, text)


def _retryable(error: ApiError) -> bool:
    """Deepgram refused the connection for a reason another attempt may not meet again."""
    return error.status_code is None or error.status_code == 429 or error.status_code >= 500


class DeepgramTranscriber:
    """UtteranceTranscriber that streams each utterance to Deepgram's live API.

    The transcript is the concatenation of Deepgram's final segments; interim results go to
    `on_interim`. A dropped or failing connection is retried up to `attempts` times, waiting
    `backoff_s`, then twice as long, between attempts; a refused key is not retried.
    """

    def __init__(
        self,
        *,
        api_key: str,
        url: str,
        model: str,
        language: str | None,
        attempts: int = 3,
        backoff_s: float = 0.25,
        response_timeout_s: float = 10.0,
        on_interim: InterimHandler = log_interim,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"a Deepgram transcriber needs at least one attempt, not {attempts}")
        production = DeepgramClientEnvironment.PRODUCTION
        self._client = AsyncDeepgramClient(
            api_key=api_key,
            environment=DeepgramClientEnvironment(
                base=production.base,
                production=url,
                agent=production.agent,
                agent_rest=production.agent_rest,
            ),
        )
        self._model = model
        self._language = language
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._response_timeout_s = response_timeout_s
        self._on_interim = on_interim

    async def listen(self, chunk: Envelope[UtteranceChunk]) -> None:
        """Deepgram hears each turn whole, from its Utterance: it gives no partial transcripts
        yet, and chunks are not used."""

    async def transcribe(self, utterance: Utterance) -> FinalTranscript:
        audio = speech_pcm16(utterance).tobytes()
        failures: list[Exception] = []
        for attempt in range(self._attempts):
            if failures:
                log.warning(
                    "turn %s: Deepgram attempt %d failed (%r), retrying",
                    utterance.turn_id,
                    attempt,
                    failures[-1],
                )
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                text = await self._stream(utterance, audio)
            except ApiError as refused:
                if not _retryable(refused):
                    raise DeepgramUnavailableError(
                        f"Deepgram refused turn {utterance.turn_id}: HTTP {refused.status_code} "
                        f"{refused.body} (check DEEPGRAM_API_KEY and VOICEBUS_STT_DEEPGRAM_MODEL)"
                    ) from refused
                failures.append(refused)
            except (_StreamFailedError, WebSocketException, OSError, TimeoutError) as error:
                failures.append(error)
            else:
                return final_transcript(utterance, text=text, language=self._language)
        raise DeepgramUnavailableError(
            f"Deepgram did not transcribe turn {utterance.turn_id} "
            f"in {self._attempts} attempts; last error: {failures[-1]!r}"
        ) from failures[-1]

    async def _stream(self, utterance: Utterance, audio: bytes) -> str:
        """One attempt: stream `audio` on a new live connection, return the final text."""
        async with (
            asyncio.timeout(self._response_timeout_s),
            self._client.listen.v1.connect(
                model=self._model,
                language=self._language,
                encoding="linear16",
                sample_rate=str(SPEECH_16K.sample_rate),
                channels="1",
                interim_results="true",
                punctuate="true",
            ) as socket,
        ):
            for start in range(0, len(audio), CHUNK_BYTES):
                await socket.send_media(audio[start : start + CHUNK_BYTES])
            await socket.send_close_stream()
            return await self._final_text(utterance, socket)

    async def _final_text(self, utterance: Utterance, socket: AsyncV1SocketClient) -> str:
        """Collect the final segments until `Metadata`, Deepgram's last message of a stream."""
        finals: list[str] = []
        async for message in socket:
            if isinstance(message, ListenV1Results):
                alternatives = message.channel.alternatives
                text = alternatives[0].transcript if alternatives else ""
                if message.is_final:
                    finals.append(text)
                elif text:
                    self._on_interim(utterance, text)
            elif isinstance(message, ListenV1Metadata):
                return " ".join(segment for segment in finals if segment)
            elif isinstance(message, ListenV1Error):
                raise _StreamFailedError(f"Deepgram error: {message.description}")
        raise _StreamFailedError("the connection closed before Deepgram's Metadata")

    def close(self) -> None:
        """Nothing to release: each utterance's connection is closed when it is transcribed."""
