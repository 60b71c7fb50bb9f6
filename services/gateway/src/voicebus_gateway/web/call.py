"""Web calls: a browser (or any WebSocket client) talks to an agent over `/web/call`.

The socket is the call: it opens with `call.started`, carries the caller's PCM16 audio in and
the agent's out, tells the client what is heard and said, and ends with `call.ended`. The
switchboard does the rest exactly as for a phone call. docs/web-call.md is the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from starlette.status import (
    WS_1000_NORMAL_CLOSURE,
    WS_1001_GOING_AWAY,
    WS_1008_POLICY_VIOLATION,
    WS_1011_INTERNAL_ERROR,
    WS_1013_TRY_AGAIN_LATER,
)
from starlette.types import Message

from voicebus_contracts import SPEECH_16K, CallStarted
from voicebus_gateway.auth.origins import socket_origin_allowed
from voicebus_gateway.auth.web_calls import WebCallTokenError, WebCallTokens
from voicebus_gateway.ports import CallActivity, CallControlError
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.switchboard import LiveCall, NotTakingCallsError, Switchboard
from voicebus_gateway.web.protocol import (
    CallEndedMessage,
    CallStartedMessage,
    ClearMessage,
    ConversationState,
    ErrorCode,
    ErrorMessage,
    HangUpRequest,
    MarkMessage,
    Played,
    PressDigit,
    ServerMessage,
    StateMessage,
    WebProtocolError,
    activity_message,
    check_caller_frame,
    parse_client_message,
)
from voicebus_gateway.web.turns import TurnTaking

log = logging.getLogger(__name__)

CALL_PATH = "/web/call"
AGENT_PARAMETER = "agent_id"
TOKEN_PARAMETER = "token"
MAX_AGENT_ID_CHARS = 128
OUTBOX_LIMIT = 256
"""Messages queued for one client at most (about 5 s of audio; paced playback keeps a handful
queued): a client that lets it fill has stopped reading, and its call is ended."""
GOODBYE_TIMEOUT_S = 2.0
"""How long the last messages and the close frame may take before the socket is dropped."""
MAX_CLOSE_REASON_BYTES = 123
"""What a WebSocket close frame has room for."""


@dataclass(frozen=True)
class CallEnding:
    """Why and how a web call's socket ends."""

    reason: str
    code: int | None
    """The close code to send; None when the socket is gone already."""
    tell_client: bool
    """Whether the client still reads: it is sent what is queued, then `call.ended`."""


class WebLeg:
    """A web call's socket, as the switchboard uses it: its AudioSink (playback) and CallLeg
    (control, what the client is shown).

    Nothing here waits for the client: messages are queued and one writer task sends them in
    order, so a slow client can stall neither the paced playback nor the bus consumers that call
    `show`, `clear` and `hang_up` for every call of the replica. A client that lets the queue
    reach `outbox_limit` has stopped reading: its call is ended rather than buffered for.
    """

    def __init__(
        self, websocket: WebSocket, *, call_id: str, outbox_limit: int = OUTBOX_LIMIT
    ) -> None:
        self._websocket = websocket
        self._call_id = call_id
        self._outbox_limit = outbox_limit
        self._outbox: deque[str | bytes] = deque()
        self._outbox_ready = asyncio.Event()
        self._accepting = True
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._ending: asyncio.Future[CallEnding] = asyncio.get_running_loop().create_future()
        self._turns = TurnTaking()

    @property
    def state(self) -> ConversationState:
        return self._turns.state

    # --- AudioSink ---

    async def send_audio(self, audio: bytes) -> None:
        self._queue(audio)
        self._report(self._turns.audio_sent())

    async def send_mark(self, name: str) -> None:
        self.send(MarkMessage(name=name))
        self._report(self._turns.mark_sent(name))

    async def clear(self) -> None:
        self.send(ClearMessage())
        self._report(self._turns.cleared())

    # --- CallLeg ---

    async def hang_up(self) -> None:
        self.end(CallEnding("hung up", WS_1000_NORMAL_CLOSURE, tell_client=True))

    async def transfer(self, to: str) -> None:
        raise CallControlError("a web call cannot be transferred to a phone number")

    async def show(self, activity: CallActivity) -> None:
        self.send(activity_message(activity))
        self._report(self._turns.saw(activity))

    # --- the client's side ---

    def played(self, mark: str) -> None:
        """The client reports it played everything up to `mark`."""
        self._report(self._turns.played(mark))

    def refuse(self, refused: WebProtocolError) -> None:
        """Tell the client a message or frame of its was dropped, and why."""
        self.send(ErrorMessage(code=refused.code, message=str(refused)))

    def send(self, message: ServerMessage) -> None:
        self._queue(message.model_dump_json())

    # --- the socket's life ---

    def start(self) -> None:
        """Start sending what is queued (and what will be)."""
        self._writer = asyncio.create_task(self._write(), name=f"{self._call_id}-writer")

    def end(self, ending: CallEnding) -> None:
        """End the call; the first ending asked for is the one that counts."""
        if not self._ending.done():
            self._ending.set_result(ending)

    async def ended(self) -> CallEnding:
        """Wait until something ends the call: the client, the server, or the socket failing."""
        return await self._ending

    async def close(self, ending: CallEnding, reason: str) -> None:
        """Send what is queued and `call.ended` (if the client still reads), then close."""
        try:
            if ending.code is not None:
                async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                    if ending.tell_client:
                        self.send(CallEndedMessage(reason=reason))
                        await self._flush()
                    await self._stop_writer()
                    await self._websocket.close(ending.code, _close_reason(reason))
        except Exception as failed:
            log.info("call %s: socket not closed cleanly: %r", self._call_id, failed)
        finally:
            await self._stop_writer()

    async def _flush(self) -> None:
        """Let the writer send everything queued, then stop."""
        self._accepting = False
        if self._writer is not None:
            self._closing = True
            self._outbox_ready.set()
            await self._writer

    async def _stop_writer(self) -> None:
        self._accepting = False
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def _queue(self, message: str | bytes) -> None:
        if not self._accepting:
            return
        if len(self._outbox) >= self._outbox_limit:
            self._accepting = False
            self._outbox.clear()
            self.end(
                CallEnding(
                    "the client stopped reading", WS_1008_POLICY_VIOLATION, tell_client=False
                )
            )
            return
        self._outbox.append(message)
        self._outbox_ready.set()

    def _report(self, state: ConversationState | None) -> None:
        if state is not None:
            self.send(StateMessage(state=state))

    async def _write(self) -> None:
        try:
            while True:
                while self._outbox:
                    message = self._outbox.popleft()
                    if isinstance(message, bytes):
                        await self._websocket.send_bytes(message)
                    else:
                        await self._websocket.send_text(message)
                if self._closing:
                    return
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
        except Exception:
            self.end(CallEnding("socket closed", None, tell_client=False))


def _close_reason(reason: str) -> str:
    return reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class WebCalls:
    """Serves the web call sockets of this replica's switchboard: each needs a token from
    `tokens` (None: keys are not required, and neither are tokens), and a browser's page must
    be the gateway's own or of `origins`."""

    def __init__(
        self,
        *,
        switchboard: Switchboard,
        default_agent: str,
        idle_timeout_s: float,
        tokens: WebCallTokens | None,
        origins: frozenset[str],
    ) -> None:
        self._switchboard = switchboard
        self._default_agent = default_agent
        self._idle_timeout_s = idle_timeout_s
        self._tokens = tokens
        self._origins = origins

    async def serve(self, websocket: WebSocket) -> None:
        # Accepted before any check: a browser sees no HTTP status on a refused upgrade, but it
        # reads an error message and a close reason.
        await websocket.accept()
        asked = websocket.query_params.get(AGENT_PARAMETER) or None
        if asked is not None and len(asked) > MAX_AGENT_ID_CHARS:
            refused = f"{AGENT_PARAMETER} is longer than {MAX_AGENT_ID_CHARS} characters"
            await _refuse(websocket, "invalid_request", refused, WS_1008_POLICY_VIOLATION)
            return
        agent_id = await self._admit(websocket, asked)
        if agent_id is None:
            return
        call_id = f"web-{uuid.uuid4().hex}"
        started = CallStarted(
            transport="web",
            agent_id=agent_id,
            gateway_id=self._switchboard.gateway_id,
            audio_in=SPEECH_16K,
            audio_out=SPEECH_16K,
            direction="inbound",
        )
        leg = WebLeg(websocket, call_id=call_id)
        # Queued before the call goes live, so nothing the call sends can overtake them.
        leg.send(CallStartedMessage(call_id=call_id, agent_id=agent_id, audio=SPEECH_16K))
        leg.send(StateMessage(state=leg.state))
        try:
            call = await self._switchboard.connect(call_id, started, sink=leg, leg=leg)
        except NotTakingCallsError:
            refused = "this gateway is stopping: call again"
            await _refuse(websocket, "unavailable", refused, WS_1013_TRY_AGAIN_LATER)
            return
        except Exception:
            log.exception("web call %s refused: the call could not start", call_id)
            refused = "the call could not start"
            await _refuse(websocket, "gateway_error", refused, WS_1011_INTERNAL_ERROR)
            return
        leg.start()
        relay = asyncio.create_task(self._relay_caller(websocket, call, leg), name=call_id)
        ending = CallEnding("gateway error", WS_1011_INTERNAL_ERROR, tell_client=True)
        try:
            ending = await leg.ended()
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            reason = call.ending or ending.reason
            # Playback stops before `call.ended` is queued: nothing of the call follows it.
            await self._switchboard.disconnect(call_id, reason)
            await leg.close(ending, reason)

    async def _admit(self, websocket: WebSocket, asked: str | None) -> str | None:
        """The agent the call may talk to; None once a caller who may not call is turned away."""
        origin = websocket.headers.get("origin")
        if not socket_origin_allowed(
            origin, host=websocket.headers.get("host"), allowed=self._origins
        ):
            log.warning(
                "web call refused: pages of %s may not call (VOICEBUS_CORS_ORIGINS)", origin
            )
            refused = f"pages of {origin} may not open web calls"
            await _refuse(websocket, "unauthorized", refused, WS_1008_POLICY_VIOLATION)
            return None
        if self._tokens is None:
            return asked or self._default_agent
        try:
            return await self._tokens.redeem(
                websocket.query_params.get(TOKEN_PARAMETER), agent_id=asked
            )
        except WebCallTokenError as refused:
            log.info("web call refused: %s", refused)
            await _refuse(websocket, "unauthorized", str(refused), WS_1008_POLICY_VIOLATION)
        except Exception:
            log.exception("web call refused: its token could not be checked")
            failed = "the call could not start"
            await _refuse(websocket, "gateway_error", failed, WS_1011_INTERNAL_ERROR)
        return None

    async def _relay_caller(self, websocket: WebSocket, call: LiveCall, leg: WebLeg) -> None:
        try:
            ending = await self._hear_caller(websocket, call, leg)
        except Exception:
            log.exception("call %s: web socket failed", call.call_id)
            ending = CallEnding("gateway error", WS_1011_INTERNAL_ERROR, tell_client=True)
        leg.end(ending)

    async def _hear_caller(self, websocket: WebSocket, call: LiveCall, leg: WebLeg) -> CallEnding:
        """Publish the caller's audio and keys, note what it played, until the call ends; how."""
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout_s):
                    message = await websocket.receive()
            except TimeoutError:
                silent = f"nothing from the caller for {self._idle_timeout_s:g} s"
                return CallEnding(silent, WS_1008_POLICY_VIOLATION, tell_client=True)
            if message["type"] == "websocket.disconnect":
                return CallEnding("socket closed", None, tell_client=False)
            if call.call_id not in self._switchboard:
                # Ended by the gateway itself (it is stopping), not through this socket.
                return CallEnding(
                    "the gateway ended the call", WS_1001_GOING_AWAY, tell_client=True
                )
            try:
                if await self._handle(message, call, leg):
                    return CallEnding("caller hung up", WS_1000_NORMAL_CLOSURE, tell_client=True)
            except WebProtocolError as refused:
                log.info("call %s: refused a message: %s", call.call_id, refused)
                leg.refuse(refused)
            except Exception:
                log.exception("call %s: a message could not be handled", call.call_id)

    async def _handle(self, message: Message, call: LiveCall, leg: WebLeg) -> bool:
        """Act on one message from the client; True if the caller hung up."""
        received_at = time.time()
        audio: bytes | None = message.get("bytes")
        if audio is not None:
            frame = check_caller_frame(audio, call.started.audio_in)
            await self._switchboard.caller_audio(call, frame, received_at=received_at)
            return False
        match parse_client_message(message.get("text") or ""):
            case PressDigit(digit=digit):
                await self._switchboard.caller_pressed(call, digit)
            case Played(mark=mark):
                call.playback.mark_echoed(mark)
                leg.played(mark)
            case HangUpRequest():
                return True
        return False


async def _refuse(websocket: WebSocket, code: ErrorCode, message: str, close_code: int) -> None:
    """Turn away a socket whose call never started: say why, then close."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(GOODBYE_TIMEOUT_S):
            await websocket.send_text(ErrorMessage(code=code, message=message).model_dump_json())
            await websocket.close(close_code, _close_reason(message))


def web_routes(
    *,
    switchboard: Switchboard,
    settings: GatewaySettings,
    tokens: WebCallTokens | None,
) -> APIRouter:
    """`WS /web/call?agent_id=<id>&token=<token>`: a web caller talks to an agent (the default
    one when no agent_id is given) through `switchboard`; see docs/web-call.md. With `tokens`
    (keys are required), only with a token from `POST /api/web-calls`, for that agent."""
    calls = WebCalls(
        switchboard=switchboard,
        default_agent=settings.default_agent,
        idle_timeout_s=settings.web_idle_timeout_s,
        tokens=tokens,
        origins=settings.browser_origins,
    )
    router = APIRouter(tags=["web"])

    @router.websocket(CALL_PATH)
    async def web_call(websocket: WebSocket) -> None:
        await calls.serve(websocket)

    return router
