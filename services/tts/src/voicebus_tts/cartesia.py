"""Cartesia Sonic, the hosted voice: every reply streamed over one WebSocket per process.

How the TTS WebSocket is spoken (https://docs.cartesia.ai/api-reference/tts/websocket):

- A reply is one Cartesia context. Each sentence is a generation request on the reply's context
  with `continue: true`, and the reply's last with `continue: false`, so the model speaks the
  reply as one stretch of speech whose prosody flows across sentences, while the agent's
  sentences are sent as each arrives. Cartesia concatenates a context's transcripts verbatim
  (https://docs.cartesia.ai/use-the-api/tts-websocket/contexts), so a continuing sentence gets
  a trailing space.
- Where a sentence's audio ends: the audio `chunk`s name only their context. After a continuing
  sentence we send a flush (empty transcript, `continue: true`, `flush: true`): the server
  generates what it holds of the context, then answers `flush_done`; the chunks before it are
  the sentence's. The last sentence needs no flush: `continue: false` closes the context, and
  `done` follows its last chunk. A reply whose last piece of text is empty is closed with an
  empty transcript and `continue: false` (what the SDK's `no_more_inputs()` sends).
- The audio of a sentence reaches the caller chunk by chunk as the server sends it.
- Interruption: closing a sentence's iterator before its end sends `{"context_id", "cancel":
  true}`, which stops the context's generation; chunks still on their way are dropped here, and
  a later sentence of that reply starts a new context.
- An `error` event ends its sentence with CartesiaSpeechError; so does a refused handshake (a wrong
  key is refused with HTTP 401 before the WebSocket opens), a connection that drops mid-sentence
  and a server that stays silent for `answer_timeout_s`.

What the SDK does and what it does not: the SDK's connection (`client.tts.websocket_connect()`)
opens the socket at the API's path with the key and the Cartesia-Version it was built for, and
sends and parses the messages, so that is what we use. Its context helper (`connection.context()`)
is not: its background reader drops what it cannot route, so when the connection closes (or the
server sends an error without a context) every context waiting on it waits forever; and its
reconnect reuses the connection manager, which hands back the same closed socket. So this module
keeps its own per-context routing over the SDK connection, and opens a new connection (a new
manager) when the old one is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

from cartesia import AsyncCartesia
from cartesia.resources.tts import AsyncTTSResourceConnection
from cartesia.types.generation_request_param import GenerationRequestParam
from cartesia.types.raw_output_format_param import RawOutputFormatParam
from cartesia.types.voice_specifier_param import VoiceSpecifierParam
from cartesia.types.websocket_client_event_param import (
    CancelContextRequest,
    WebsocketClientEventParam,
)
from cartesia.types.websocket_response import Chunk, Done, Error, FlushDone, WebsocketResponse
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from voicebus_tts.pcm import Linear16Decoder
from voicebus_tts.ports import PcmChunk, Sentence

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sonic-3.5"
SAMPLE_RATES = (8_000, 16_000, 22_050, 24_000, 44_100, 48_000)
"""The raw output rates Cartesia offers."""
ANSWER_TIMEOUT_S = 10.0
"""Longest silence from the server while a sentence is being spoken before it counts as failed."""
MAX_OPEN_REPLIES = 1_024
"""Replies whose context stays open between sentences. A reply the caller interrupted between
two sentences never gets its last one; past this many, the oldest open context is cancelled."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_END = None
"""Put on a context's queue when its connection is gone."""

Event = WebsocketResponse | None


class CartesiaSpeechError(RuntimeError):
    """Cartesia did not speak a sentence: it refused the connection (a bad key) or the request
    (a bad voice or model, a quota), the connection dropped mid-sentence, or the server went
    silent."""


class _ContextEndedError(CartesiaSpeechError):
    """The server ended the sentence's context with an error, or the connection went."""


class _ConnectionLostError(_ContextEndedError):
    """The connection went."""


class _Connection:
    """One open WebSocket to Cartesia: sends requests, and hands each event to its context."""

    def __init__(self, socket: AsyncTTSResourceConnection) -> None:
        self._socket = socket
        self._contexts: dict[str, asyncio.Queue[Event]] = {}
        self._broken = False
        self._reading = asyncio.create_task(self._read(), name="cartesia-reader")

    @property
    def closed(self) -> bool:
        return self._broken or self._reading.done()

    def listen(self, context_id: str) -> asyncio.Queue[Event]:
        events: asyncio.Queue[Event] = asyncio.Queue()
        if self.closed:
            events.put_nowait(_END)
        self._contexts[context_id] = events
        return events

    def forget(self, context_id: str) -> None:
        """What the server still says about the context is dropped."""
        self._contexts.pop(context_id, None)

    async def send(self, request: WebsocketClientEventParam) -> None:
        try:
            await self._socket.send(request)
        except ConnectionClosed:
            self._broken = True
            raise

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._socket.close()
        await self._reading

    async def _read(self) -> None:
        try:
            while True:
                self._route(await self._socket.recv())
        except ConnectionClosed as closed:
            log.info(
                "Cartesia connection closed (code %s)", closed.rcvd.code if closed.rcvd else None
            )
        except Exception:
            log.exception("unreadable message from Cartesia; closing the connection")
            with contextlib.suppress(ConnectionClosed):
                await self._socket.close()
        finally:
            for events in self._contexts.values():
                events.put_nowait(_END)

    def _route(self, event: WebsocketResponse) -> None:
        context_id = getattr(event, "context_id", None)
        if context_id is not None:
            if (events := self._contexts.get(context_id)) is not None:
                events.put_nowait(event)
        elif isinstance(event, Error):
            # An error the server could not tie to a context concerns every one in flight.
            for events in self._contexts.values():
                events.put_nowait(event)


@dataclass
class _Reply:
    """A reply being spoken: its context on the connection that carries it."""

    context_id: str
    connection: _Connection
    events: asyncio.Queue[Event]


class CartesiaSynthesizer:
    """SpeechSynthesizer on Cartesia's TTS WebSocket: 16-bit PCM at `sample_rate`, `voice` being
    a Cartesia voice id. One connection for the process, opened on first use and reopened when
    it drops; `aclose()` closes it."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str = DEFAULT_MODEL,
        sample_rate: int = 24_000,
        base_url: str | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        if not api_key.strip():
            raise ValueError("Cartesia speech needs an API key: set CARTESIA_API_KEY")
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"Cartesia speaks at {SAMPLE_RATES} Hz, not {sample_rate}")
        self._client = AsyncCartesia(
            api_key=api_key,
            base_url=base_url,
            websocket_base_url=_websocket_url(base_url) if base_url else None,
            max_retries=0,
        )
        self._model = model
        self._sample_rate = sample_rate
        self._output_format: RawOutputFormatParam = {
            "container": "raw",
            "encoding": "pcm_s16le",
            "sample_rate": cast(Any, sample_rate),
        }
        self._answer_timeout_s = answer_timeout_s
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._replies: OrderedDict[str, _Reply] = OrderedDict()
        self._contexts_opened = itertools.count(1)

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        reply = self._replies.pop(sentence.reply_id, None)
        if reply is not None and reply.connection.closed:
            reply = None  # its context went with the old connection: the rest starts a new one
        if not sentence.text.strip() and (reply is None or not sentence.last):
            if reply is not None:
                self._replies[sentence.reply_id] = reply  # still open for what follows
            return
        for attempt in (1, 2):
            if reply is None:
                reply = await self._start_reply(sentence.reply_id)
            heard = False
            try:
                async with contextlib.aclosing(self._speak(reply, sentence, voice)) as audio:
                    async for chunk in audio:
                        heard = True
                        yield chunk
                return
            except _ConnectionLostError:
                # Gone before a sound of the sentence was heard (Cartesia closes connections
                # idle for 5 minutes): said again, once, on a new connection.
                if heard or attempt == 2:
                    raise
                reply = None

    async def aclose(self) -> None:
        """Close the connection; sentences still being spoken end with CartesiaSpeechError."""
        self._replies.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        await self._client.close()

    async def _speak(
        self, reply: _Reply, sentence: Sentence, voice: str
    ) -> AsyncGenerator[PcmChunk, None]:
        """The sentence sent on the reply's context, and its audio as it arrives; the context
        kept for the reply's next sentence, or forgotten, and cancelled if left unfinished."""
        outcome = "abandoned"  # the caller stopped listening, or the server went silent
        try:
            request = self._request(reply.context_id, voice, sentence)
            try:
                await reply.connection.send(request)
                if not sentence.last:
                    await reply.connection.send(request | {"transcript": "", "flush": True})
            except ConnectionClosed as closed:
                raise _ConnectionLostError(
                    f"the connection to Cartesia closed: {closed}"
                ) from closed
            async for chunk in self._audio(reply, sentence):
                yield chunk
            outcome = "spoken"
        except _ContextEndedError:
            outcome = "ended"
            raise
        finally:
            if outcome == "spoken" and not sentence.last:
                self._replies[sentence.reply_id] = reply  # open for the reply's next sentence
            else:
                reply.connection.forget(reply.context_id)
                if outcome == "abandoned":
                    await _cancel(reply)

    async def _audio(self, reply: _Reply, sentence: Sentence) -> AsyncIterator[PcmChunk]:
        """The sentence's audio as it arrives, until the server says the sentence is spoken."""
        pcm = Linear16Decoder()
        while True:
            try:
                async with asyncio.timeout(self._answer_timeout_s):
                    event = await reply.events.get()
            except TimeoutError:
                raise CartesiaSpeechError(
                    f"Cartesia said nothing for {self._answer_timeout_s} s on context "
                    f"{reply.context_id}"
                ) from None
            match event:
                case None:
                    raise _ConnectionLostError(
                        f"the connection to Cartesia dropped ({reply.context_id})"
                    )
                case Error(type="error"):
                    raise _ContextEndedError(
                        f"Cartesia refused context {reply.context_id}: "
                        f"{event.status_code} {event.title}: {event.message}"
                    )
                case Chunk(type="chunk"):
                    samples = pcm.samples(event.audio or b"")
                    if len(samples):
                        yield PcmChunk(samples=samples, sample_rate=self._sample_rate)
                    if event.done:
                        return
                case FlushDone(type="flush_done") if not sentence.last:
                    return
                case Done(type="done"):
                    return
                case _:
                    continue  # timestamps, which are not asked for

    async def _start_reply(self, reply_id: str) -> _Reply:
        if len(self._replies) >= MAX_OPEN_REPLIES:
            _, abandoned = self._replies.popitem(last=False)
            abandoned.connection.forget(abandoned.context_id)
            await _cancel(abandoned)
        connection = await self._open_connection()
        context_id = f"{_UNSAFE.sub('-', reply_id)[:64]}-{next(self._contexts_opened)}"
        return _Reply(context_id, connection, connection.listen(context_id))

    async def _open_connection(self) -> _Connection:
        async with self._connecting:
            if self._connection is None or self._connection.closed:
                # A new manager each time: a manager keeps handing back the socket it opened.
                manager = self._client.tts.websocket_connect()
                try:
                    socket = await manager.enter()
                except InvalidStatus as refused:
                    raise CartesiaSpeechError(_refusal(refused)) from None
                except InvalidHandshake as failed:
                    raise CartesiaSpeechError(f"Cartesia's handshake failed: {failed}") from failed
                except (OSError, TimeoutError) as unreachable:
                    raise CartesiaSpeechError(
                        f"Cartesia is unreachable: {unreachable}"
                    ) from unreachable
                self._connection = _Connection(socket)
                log.info("Cartesia connection open")
            return self._connection

    def _request(self, context_id: str, voice: str, sentence: Sentence) -> GenerationRequestParam:
        text = sentence.text
        if not sentence.last and not text[-1:].isspace():
            text += " "
        return {
            "context_id": context_id,
            "model_id": self._model,
            "transcript": text,
            "voice": cast(VoiceSpecifierParam, {"mode": "id", "id": voice}),
            "output_format": self._output_format,
            "continue": not sentence.last,
        }


async def _cancel(reply: _Reply) -> None:
    """Tell the server to stop generating the reply's context; nothing to do if it is gone."""
    if not reply.connection.closed:
        with contextlib.suppress(ConnectionClosed):
            await reply.connection.send(
                CancelContextRequest(context_id=reply.context_id, cancel=True)
            )


def _websocket_url(base_url: str) -> str:
    """The WebSocket URL of an API base URL: https -> wss, http -> ws."""
    return re.sub(r"^http", "ws", base_url)


def _refusal(refused: InvalidStatus) -> str:
    """Why the handshake was refused, in Cartesia's words when its body says."""
    status = refused.response.status_code
    try:
        body = json.loads(refused.response.body or b"")
        detail = f"{body['title']}: {body['message']}"
    except (ValueError, KeyError, TypeError):
        detail = (refused.response.body or b"").decode(errors="replace")[:200]
    hint = " (check CARTESIA_API_KEY)" if status in (401, 403) else ""
    return f"Cartesia refused the connection with HTTP {status}{hint}: {detail}"
