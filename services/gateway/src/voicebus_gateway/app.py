"""The gateway: one process serving Twilio's webhook and media socket, and the Kafka bus.

Caller audio goes out on the bus as it arrives; reply audio for this replica's calls comes back on
its own topic and is played to the caller's socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.status import WS_1003_UNSUPPORTED_DATA, WS_1008_POLICY_VIOLATION

from voicebus_contracts import (
    TELEPHONE,
    CallEnded,
    CallRoute,
    CallStarted,
    Envelope,
    OutboundAudioChunk,
    ReplyPlaybackStarted,
    ServiceHeartbeat,
    derived_id,
    envelope,
)
from voicebus_contracts.topics import AUDIO_IN, CALLS, HEARTBEATS, PLAYBACK, gateway_topic
from voicebus_gateway.health import check_health
from voicebus_gateway.playback import Playback
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.twilio_protocol import (
    Connected,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    UnsupportedMediaFormatError,
    call_started,
    check_media_format,
    inbound_frame,
    parse_message,
)
from voicebus_gateway.twilio_sink import TwilioSink
from voicebus_gateway.twiml import connect_to_stream, media_stream_url
from voicebus_runtime.bus import consumer_options, make_broker, publish
from voicebus_runtime.heartbeat import Heartbeat, LivenessBoard
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

log = logging.getLogger(__name__)

SERVICE = "gateway"
START_TIMEOUT_S = 10.0
"""How long a new media socket may take to say `start` before it is closed."""
ANALYTICS_TIMEOUT_S = 5.0


class StreamRefusedError(Exception):
    """A media socket that did not open with a usable `start`; closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def _receive_raw(websocket: WebSocket) -> str | bytes | None:
    """The next message's text (or bytes), None once the peer has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text: str | None = message.get("text")
    return text if text is not None else bytes(message.get("bytes") or b"")


async def _receive_start(websocket: WebSocket) -> Start | None:
    """Twilio opens with `connected` then `start`; None if the peer left before that."""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            for _ in range(2):
                raw = await _receive_raw(websocket)
                if raw is None:
                    return None
                message = parse_message(raw)
                if isinstance(message, Start):
                    check_media_format(message)
                    return message
                if not isinstance(message, Connected):
                    break
    except UnsupportedMediaFormatError as exc:
        raise StreamRefusedError(WS_1003_UNSUPPORTED_DATA, str(exc)) from exc
    except TwilioProtocolError as exc:
        raise StreamRefusedError(WS_1008_POLICY_VIOLATION, str(exc)) from exc
    except TimeoutError as exc:
        reason = f"no 'start' within {START_TIMEOUT_S:.0f} s"
        raise StreamRefusedError(WS_1008_POLICY_VIOLATION, reason) from exc
    raise StreamRefusedError(WS_1008_POLICY_VIOLATION, "expected 'connected' then 'start'")


class Gateway:
    """This replica: the calls whose sockets it holds, and its ends of the bus, Redis, analytics."""

    def __init__(self, settings: GatewaySettings, bus: BusSettings) -> None:
        self.settings = settings
        self.gateway_id = settings.resolved_gateway_id(bus)
        self.broker = make_broker(
            bus.kafka_bootstrap, client_id=f"voicebus-gateway-{self.gateway_id}"
        )
        self.liveness = LivenessBoard(
            expected=settings.required_services, stale_after_s=settings.heartbeat_stale_s
        )
        self._heartbeat = Heartbeat(
            self.broker,
            service=SERVICE,
            instance=bus.instance_id,
            interval_s=bus.heartbeat_interval_s,
        )
        self._redis = Redis.from_url(bus.redis_url)
        self._registry = CallRegistry(self._redis)
        self._analytics = httpx.AsyncClient(
            base_url=settings.analytics_url, timeout=ANALYTICS_TIMEOUT_S
        )
        self._playbacks: dict[str, Playback] = {}
        own_group = f"gateway-{self.gateway_id}"
        self.broker.subscriber(
            gateway_topic(self.gateway_id).name,
            **consumer_options(own_group, fetch_max_wait_ms=bus.kafka_fetch_max_wait_ms),
        )(self.on_gateway)
        # No consumer group, so every replica sees every beat.
        self.broker.subscriber(HEARTBEATS.name, **consumer_options(None))(self.on_heartbeats)

    async def start(self) -> None:
        await self.broker.start()
        self._heartbeat.start()
        log.info("gateway %s up, reading %s", self.gateway_id, gateway_topic(self.gateway_id).name)

    async def stop(self) -> None:
        await self._heartbeat.stop()
        await self.broker.stop()
        await self._analytics.aclose()
        await self._redis.aclose()

    # --- bus handlers -------------------------------------------------------------------------

    async def on_gateway(self, env: Envelope[OutboundAudioChunk]) -> None:
        playback = self._playbacks.get(env.call_id)
        if playback is None:
            log.info(
                "call %s: reply %s audio dropped, the call is not live here",
                env.call_id,
                env.event.reply_id,
            )
            return
        playback.enqueue(env)

    async def on_heartbeats(self, env: Envelope[ServiceHeartbeat]) -> None:
        self.liveness.saw(env.event)

    async def _report_playback_started(self, chunk: Envelope[OutboundAudioChunk]) -> None:
        started = envelope(
            ReplyPlaybackStarted(reply_id=chunk.event.reply_id),
            call_id=chunk.call_id,
            producer=SERVICE,
            stamps=chunk.stamps.stamp(playback_started=time.time()),
            event_id=derived_id(chunk.event_id, "playback.started"),
        )
        # Playback is paced in real time: it does not wait for the broker's ack.
        await publish(self.broker, PLAYBACK, started, confirm=False)

    # --- Twilio -------------------------------------------------------------------------------

    def answer(self, form: dict[str, str], *, host: str) -> str:
        """TwiML connecting the call in Twilio's webhook `form` to our media socket."""
        stream_url = media_stream_url(public_url=self.settings.public_url, host=host)
        log.info("call %s: answered, streaming to %s", form.get("CallSid"), stream_url)
        return connect_to_stream(
            stream_url,
            agent_id=self.settings.default_agent,
            from_number=form.get("From"),
            to_number=form.get("To"),
        )

    async def serve_media(self, websocket: WebSocket) -> None:
        """One Twilio media stream, from `connected` to `stop` or the socket closing."""
        await websocket.accept()
        try:
            start = await _receive_start(websocket)
            if start is None:
                return
            if start.start.call_sid in self._playbacks:
                raise StreamRefusedError(WS_1008_POLICY_VIOLATION, "call is already streaming")
            started = call_started(
                start, gateway_id=self.gateway_id, default_agent=self.settings.default_agent
            )
        except ValidationError as exc:
            log.warning("media socket refused: invalid start: %s", exc)
            await websocket.close(WS_1008_POLICY_VIOLATION, "invalid start parameters")
            return
        except StreamRefusedError as exc:
            log.warning("media socket refused: %s", exc.reason)
            await websocket.close(exc.code, exc.reason[:120])
            return
        try:
            await self._stream_call(websocket, start, started)
        except Exception:
            log.exception("call %s: stream failed", start.start.call_sid)

    async def _stream_call(self, websocket: WebSocket, start: Start, started: CallStarted) -> None:
        call_id = start.start.call_sid
        playback = Playback(
            call_id=call_id,
            sink=TwilioSink(stream_sid=start.stream_sid, send_text=websocket.send_text),
            audio_format=TELEPHONE,
            on_reply_started=self._report_playback_started,
            lead_s=self.settings.playback_lead_ms / 1000.0,
        )
        route = CallRoute(
            call_id=call_id,
            gateway_id=self.gateway_id,
            transport="twilio",
            agent_id=started.agent_id,
            audio_out=TELEPHONE,
        )
        # Claimed before the first await, so a second socket for the call is refused.
        self._playbacks[call_id] = playback
        playback.start()
        reason = "gateway error"
        try:
            await self._registry.register(route)
            await publish(self.broker, CALLS, envelope(started, call_id=call_id, producer=SERVICE))
            log.info("call %s: started, agent %s", call_id, started.agent_id)
            reason = await self._relay_caller(websocket, call_id, playback)
        finally:
            await self._end_call(call_id, reason)

    async def _relay_caller(self, websocket: WebSocket, call_id: str, playback: Playback) -> str:
        """Publish the caller's audio and note mark echoes until the stream ends; why it ended."""
        seq = 0
        while True:
            raw = await _receive_raw(websocket)
            if raw is None:
                return "socket closed"
            received_at = time.time()
            try:
                message = parse_message(raw)
                if isinstance(message, Media):
                    frame = inbound_frame(message, seq=seq, received_at=received_at)
                    env = envelope(frame, call_id=call_id, producer=SERVICE)
                    # The audio path never waits on the broker's ack.
                    await publish(self.broker, AUDIO_IN, env, confirm=False)
                    seq += 1
                elif isinstance(message, Mark):
                    playback.mark_echoed(message.mark.name)
                elif isinstance(message, Stop):
                    return "stream stopped"
            except TwilioProtocolError as exc:
                log.warning("call %s: ignored a message: %s", call_id, exc)
            except Exception:
                log.exception("call %s: a message could not be handled", call_id)

    async def _end_call(self, call_id: str, reason: str) -> None:
        playback = self._playbacks.pop(call_id, None)
        if playback is not None:
            await playback.stop()
        try:
            ended = envelope(CallEnded(reason=reason), call_id=call_id, producer=SERVICE)
            await publish(self.broker, CALLS, ended)
        except Exception:
            log.exception("call %s: CallEnded not published", call_id)
        await self._registry.forget(call_id)
        log.info("call %s: ended (%s)", call_id, reason)

    # --- analytics ----------------------------------------------------------------------------

    async def forward_to_analytics(self, request: Request) -> Response:
        """The analytics service's answer to the same GET, status and body as they are."""
        try:
            upstream = await self._analytics.get(request.url.path, params=request.query_params)
        except httpx.TransportError as exc:
            log.warning("analytics unreachable at %s: %s", self.settings.analytics_url, exc)
            return JSONResponse(
                {"detail": f"analytics service unreachable at {self.settings.analytics_url}"},
                status_code=503,
            )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )


def create_app(settings: GatewaySettings | None = None, bus: BusSettings | None = None) -> FastAPI:
    """The gateway app; its broker starts and stops with it (topics must exist, see __main__)."""
    gateway = Gateway(settings or GatewaySettings(), bus or BusSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(title="voicebus gateway", lifespan=lifespan)
    app.state.gateway = gateway

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        health = check_health(gateway.liveness)
        body = health.model_dump(exclude_none=True)
        return JSONResponse(body, status_code=200 if health.ok else 503)

    @app.post("/twilio/voice")
    async def twilio_voice(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        twiml = gateway.answer(form, host=request.headers.get("host", gateway.settings.host))
        return Response(twiml, media_type="application/xml")

    @app.websocket("/twilio/media")
    async def twilio_media(websocket: WebSocket) -> None:
        await gateway.serve_media(websocket)

    @app.get("/api/calls")
    async def list_calls(request: Request) -> Response:
        return await gateway.forward_to_analytics(request)

    @app.get("/api/calls/{call_id}")
    async def get_call(call_id: str, request: Request) -> Response:
        return await gateway.forward_to_analytics(request)

    return app
