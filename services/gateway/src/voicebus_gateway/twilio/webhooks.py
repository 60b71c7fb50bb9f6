"""Twilio's webhooks: the voice webhook that answers a call, the status callbacks, the
answering-machine detection's decisions, the stream.

Every webhook must carry a valid X-Twilio-Signature: anything else is refused with 403 and
logged, and publishes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import cast, get_args
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker

from voicebus_contracts import AnsweredBy, CallAnsweredBy, CallStatus, CallStatusChanged, envelope
from voicebus_contracts.topics import CALLS
from voicebus_gateway.placements import Placements
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.switchboard import SERVICE
from voicebus_gateway.twilio.carrier import (
    MACHINE_DETECTION_PATH,
    PLACEMENT_PARAMETER,
    STATUS_PATH,
    VOICE_PATH,
)
from voicebus_gateway.twilio.media import AGENT_PARAMETER, MediaStreams
from voicebus_gateway.twilio.security import (
    TOKEN_PARAMETER,
    StreamTokens,
    WebhookVerifier,
    signed_url,
)
from voicebus_gateway.twilio.twiml import MEDIA_PATH, connect_to_stream, media_stream_url
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import publish

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024
"""Far above any Twilio webhook's form."""
STATUSES: frozenset[str] = frozenset(get_args(CallStatus))
ANSWERED_BY: frozenset[str] = frozenset(get_args(AnsweredBy))

StatusListener = Callable[[str, CallStatus], Awaitable[None]]
"""Told each call's new status (campaigns follow their calls with it)."""


def _status_event_id(form: dict[str, str]) -> uuid.UUID:
    """The same for Twilio's retries of one callback, so the bus sees each change once."""
    name = f"{form.get('CallSid')}:{form.get('CallStatus')}:{form.get('SequenceNumber', '')}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"twilio-status:{name}")


def _answered_by_event_id(call_sid: str, answered_by: AnsweredBy) -> uuid.UUID:
    """The same for Twilio's retries of a call's decision (it decides once per call), so the
    bus sees it once."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"twilio-amd:{call_sid}:{answered_by}")


def _answered_by(form: dict[str, str]) -> AnsweredBy:
    """Twilio's AnsweredBy; a value this version does not know is `unknown`."""
    answered_by = form.get("AnsweredBy", "")
    if answered_by in ANSWERED_BY:
        return cast("AnsweredBy", answered_by)
    log.warning("call %s: AnsweredBy %r taken as unknown", form.get("CallSid"), answered_by)
    return "unknown"


class SignedForms:
    """Twilio's webhook forms, read only when Twilio signed them; `verifier` is None when
    TWILIO_AUTH_TOKEN is not set, and then every webhook is refused, saying so."""

    def __init__(self, verifier: WebhookVerifier | None, *, public_url: str | None) -> None:
        self._verifier = verifier
        self._public_url = public_url

    async def read(self, request: Request) -> dict[str, str] | Response:
        """The webhook's form if Twilio signed it; else the response refusing it."""
        if self._verifier is None:
            log.error("Twilio webhook %s refused: TWILIO_AUTH_TOKEN is not set", request.url.path)
            return JSONResponse(
                {"detail": "TWILIO_AUTH_TOKEN is not set: Twilio webhooks cannot be verified"},
                status_code=503,
            )
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return JSONResponse({"detail": "webhook body too large"}, status_code=413)
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        url = signed_url(
            public_url=self._public_url,
            request_url=str(request.url),
            path=request.url.path,
            query=request.url.query,
        )
        if not self._verifier.verify(url, form, request.headers.get("X-Twilio-Signature")):
            log.warning(
                "Twilio webhook refused: missing or invalid signature for %s (call %s)",
                url,
                form.get("CallSid"),
            )
            return JSONResponse({"detail": "invalid Twilio signature"}, status_code=403)
        return form


VerifiedForm = Callable[[Request], Awaitable[dict[str, str] | Response]]
"""A webhook's form if Twilio signed it, else the response refusing it (`SignedForms.read`)."""


def machine_detection_routes(
    *, verified_form: VerifiedForm, placements: Placements, broker: KafkaBroker
) -> APIRouter:
    """The answering-machine detection's decisions, for the calls we placed asking for it (the
    placement's id in the URL); a decision for any other call is refused with 404."""
    router = APIRouter()

    @router.post(MACHINE_DETECTION_PATH)
    async def machine_detection(request: Request) -> Response:
        """Who answered a call we placed listening for answering machines: the event its agent
        holds the greeting for."""
        form = await verified_form(request)
        if isinstance(form, Response):
            return form
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return JSONResponse({"detail": "no CallSid in the webhook"}, status_code=400)
        placement_id = request.query_params.get(PLACEMENT_PARAMETER)
        if placement_id is None or await placements.recall(placement_id) is None:
            log.warning(
                "call %s: machine detection refused, placement %s unknown or expired",
                call_sid,
                placement_id,
            )
            return JSONResponse({"detail": "unknown placement"}, status_code=404)
        duration = form.get("MachineDetectionDuration", "")
        answered = CallAnsweredBy(
            answered_by=_answered_by(form),
            detection_ms=int(duration) if duration.isdigit() else None,
        )
        event_id = _answered_by_event_id(call_sid, answered.answered_by)
        env = envelope(answered, call_id=call_sid, producer=SERVICE, event_id=event_id)
        await publish(broker, CALLS, env)
        log.info(
            "call %s: answered by %s (decided in %s ms)",
            call_sid,
            answered.answered_by,
            answered.detection_ms,
        )
        return Response(status_code=204)

    return router


def twilio_routes(
    *,
    settings: GatewaySettings,
    broker: KafkaBroker,
    placements: Placements,
    verifier: WebhookVerifier | None,
    tokens: StreamTokens | None,
    media: MediaStreams,
    on_status: StatusListener,
    agents: AgentDirectory,
) -> APIRouter:
    """Twilio's routes; `verifier` and `tokens` are None when TWILIO_AUTH_TOKEN is not set,
    and then every webhook and stream is refused, saying so. The agent of an inbound call is
    the one that claims the number called (`agents`), else the settings' mapping, else the
    default agent."""
    router = APIRouter(tags=["twilio"])
    verified_form = SignedForms(verifier, public_url=settings.public_url).read

    @router.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        """Answer a call: TwiML connecting it to our media stream, with a token to get in."""
        form = await verified_form(request)
        if isinstance(form, Response):
            return form
        call_sid = form.get("CallSid", "")
        if not call_sid:
            return JSONResponse({"detail": "no CallSid in the webhook"}, status_code=400)
        parameters = {"From": form.get("From", ""), "To": form.get("To", "")}
        placement_id = request.query_params.get(PLACEMENT_PARAMETER)
        placement = None if placement_id is None else await placements.recall(placement_id)
        if placement_id is not None and placement is None:
            log.warning("call %s: placement %s unknown or expired", call_sid, placement_id)
            return JSONResponse({"detail": "unknown placement"}, status_code=404)
        if placement is not None and placement_id is not None:
            parameters[AGENT_PARAMETER] = placement.agent_id
            parameters[PLACEMENT_PARAMETER] = placement_id
        else:
            called = form.get("To", "")
            claimed = agents.for_number(called)
            parameters[AGENT_PARAMETER] = (
                claimed.agent_id
                if claimed is not None
                else settings.number_agents.get(called, settings.default_agent)
            )
        assert tokens is not None  # verified_form refused the webhook otherwise
        parameters[TOKEN_PARAMETER] = tokens.issue(call_sid, parameters)
        stream_url = media_stream_url(
            public_url=settings.public_url, host=request.headers.get("host", settings.host)
        )
        log.info(
            "call %s: answered for agent %s, streaming to %s",
            call_sid,
            parameters[AGENT_PARAMETER],
            stream_url,
        )
        return Response(connect_to_stream(stream_url, parameters), media_type="application/xml")

    @router.post(STATUS_PATH)
    async def status(request: Request) -> Response:
        """A call's new status: an event on the bus, and news for its campaign if it has one."""
        form = await verified_form(request)
        if isinstance(form, Response):
            return form
        call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
        if not call_sid or call_status not in STATUSES:
            log.warning("status callback refused: call %r status %r", call_sid, call_status)
            return JSONResponse({"detail": "expected CallSid and a known CallStatus"}, 400)
        duration = form.get("CallDuration", "")
        changed = CallStatusChanged(
            status=call_status,  # checked against STATUSES
            direction="inbound" if form.get("Direction") == "inbound" else "outbound",
            from_number=form.get("From") or None,
            to_number=form.get("To") or None,
            duration_s=int(duration) if duration.isdigit() else None,
        )
        env = envelope(changed, call_id=call_sid, producer=SERVICE, event_id=_status_event_id(form))
        await publish(broker, CALLS, env)
        await on_status(call_sid, changed.status)
        log.info("call %s: %s", call_sid, call_status)
        return Response(status_code=204)

    @router.websocket(MEDIA_PATH)
    async def media_stream(websocket: WebSocket) -> None:
        await media.serve(websocket)

    router.include_router(
        machine_detection_routes(verified_form=verified_form, placements=placements, broker=broker)
    )
    return router
