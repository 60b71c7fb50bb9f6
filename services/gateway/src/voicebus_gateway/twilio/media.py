"""Twilio Media Streams: one call's WebSocket, from `connected` to `stop`.

A stream is let in only with the token our TwiML answer gave it; then the caller's audio and key
presses go to the bus through the switchboard, and reply audio comes back through its playback.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import WebSocket
from pydantic import ValidationError
from starlette.status import (
    WS_1000_NORMAL_CLOSURE,
    WS_1003_UNSUPPORTED_DATA,
    WS_1008_POLICY_VIOLATION,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
)

from voicebus_contracts import CallStarted
from voicebus_gateway.placements import Placements
from voicebus_gateway.ports import CallActivity
from voicebus_gateway.switchboard import (
    CallAlreadyLiveError,
    LiveCall,
    NotTakingCallsError,
    Switchboard,
)
from voicebus_gateway.twilio.carrier import PLACEMENT_PARAMETER, TwilioCarrier
from voicebus_gateway.twilio.protocol import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    UnsupportedMediaFormatError,
    call_started,
    check_media_format,
    parse_message,
)
from voicebus_gateway.twilio.security import TOKEN_PARAMETER, StreamTokenError, StreamTokens
from voicebus_gateway.twilio.sink import TwilioSink

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
"""How long a new media socket may take to say `start` before it is closed."""
AGENT_PARAMETER = "agent_id"


class StreamRefusedError(Exception):
    """A media socket that did not open with a usable `start`; closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TwilioLeg:
    """A Twilio call's side of call control: its media socket and Twilio's REST API."""

    def __init__(self, *, call_sid: str, websocket: WebSocket, carrier: TwilioCarrier) -> None:
        self._call_sid = call_sid
        self._websocket = websocket
        self._carrier = carrier

    async def hang_up(self) -> None:
        # Our TwiML has nothing after <Connect><Stream>: when the stream ends, Twilio hangs up.
        await self._websocket.close(WS_1000_NORMAL_CLOSURE, "call ended")

    async def transfer(self, to: str) -> None:
        await self._carrier.transfer(self._call_sid, to)

    async def show(self, activity: CallActivity) -> None:
        """A phone shows nothing."""


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


class MediaStreams:
    """Serves Twilio's media sockets for this replica's switchboard."""

    def __init__(
        self,
        *,
        switchboard: Switchboard,
        tokens: StreamTokens | None,
        placements: Placements,
        carrier: TwilioCarrier,
    ) -> None:
        self._switchboard = switchboard
        self.tokens = tokens
        self._placements = placements
        self._carrier = carrier

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            start = await _receive_start(websocket)
            if start is None:
                return
            started = await self._admit(start)
            call = await self._switchboard.connect(
                start.start.call_sid,
                started,
                sink=TwilioSink(stream_sid=start.stream_sid, send_text=websocket.send_text),
                leg=TwilioLeg(
                    call_sid=start.start.call_sid, websocket=websocket, carrier=self._carrier
                ),
            )
        except StreamRefusedError as refused:
            log.warning("media socket refused: %s", refused.reason)
            await websocket.close(refused.code, refused.reason[:120])
            return
        except CallAlreadyLiveError as refused:
            log.warning("media socket refused: %s", refused)
            await websocket.close(WS_1008_POLICY_VIOLATION, "call is already streaming")
            return
        except NotTakingCallsError as refused:
            log.warning("media socket refused: %s", refused)
            await websocket.close(WS_1013_TRY_AGAIN_LATER, "gateway stopping")
            return
        except Exception:
            log.exception("media socket refused: the call could not start")
            await websocket.close(WS_1011_INTERNAL_ERROR, "gateway error")
            return
        reason = "gateway error"
        try:
            reason = await self._relay_caller(websocket, call)
        except Exception:
            log.exception("call %s: stream failed", call.call_id)
        finally:
            await self._switchboard.disconnect(call.call_id, reason)

    async def _admit(self, start: Start) -> CallStarted:
        """The call a verified `start` opens; raises StreamRefusedError for any other."""
        params = start.start.custom_parameters
        call_sid = start.start.call_sid
        if self.tokens is None:
            raise StreamRefusedError(
                WS_1008_POLICY_VIOLATION, "TWILIO_AUTH_TOKEN is not set: streams cannot be verified"
            )
        try:
            self.tokens.check(params.get(TOKEN_PARAMETER), call_sid, params)
        except StreamTokenError as invalid:
            raise StreamRefusedError(WS_1008_POLICY_VIOLATION, str(invalid)) from invalid
        agent_id = params.get(AGENT_PARAMETER)
        if not agent_id:
            raise StreamRefusedError(WS_1008_POLICY_VIOLATION, "no agent_id parameter")
        variables: dict[str, str] = {}
        placement_id = params.get(PLACEMENT_PARAMETER)
        if placement_id:
            placement = await self._placements.recall(placement_id)
            variables = {} if placement is None else dict(placement.variables)
        try:
            return call_started(
                start,
                gateway_id=self._switchboard.gateway_id,
                agent_id=agent_id,
                direction="outbound" if placement_id else "inbound",
                variables=variables,
            )
        except ValidationError as invalid:
            raise StreamRefusedError(
                WS_1008_POLICY_VIOLATION, "invalid start parameters"
            ) from invalid

    async def _relay_caller(self, websocket: WebSocket, call: LiveCall) -> str:
        """Publish the caller's audio and keys, note mark echoes, until the stream ends; why."""
        while True:
            raw = await _receive_raw(websocket)
            if raw is None:
                return "socket closed"
            received_at = time.time()
            try:
                message = parse_message(raw)
                if isinstance(message, Media):
                    await self._switchboard.caller_audio(
                        call, message.media.payload, received_at=received_at
                    )
                elif isinstance(message, Mark):
                    call.playback.mark_echoed(message.mark.name)
                elif isinstance(message, Dtmf):
                    await self._switchboard.caller_pressed(call, message.dtmf.digit)
                elif isinstance(message, Stop):
                    return "stream stopped"
            except (TwilioProtocolError, ValidationError) as exc:
                log.warning("call %s: ignored a message: %s", call.call_id, exc)
            except Exception:
                log.exception("call %s: a message could not be handled", call.call_id)
