"""The public API: calls (place them, control live ones, read their record, kept by analytics)
and agents (kept by the agent service)."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts import CallCommand, HangUp, SendDtmf, TransferCall
from voicebus_gateway.auth.access import requires
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.ports import Dialer, DialError, OutboundCall
from voicebus_gateway.twilio.carrier import CarrierNotConfiguredError
from voicebus_gateway.upstream import forward
from voicebus_runtime.control import CallControl

log = logging.getLogger(__name__)

ANALYTICS = "the analytics service"
AGENT_SERVICE = "the agent service"


class PlacedCall(BaseModel):
    call_id: str
    to: str


class HangUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="hung up through the API", max_length=200)


class Accepted(BaseModel):
    call_id: str
    accepted: str
    """The command sent to the call's gateway replica."""


def calls_routes(
    *, dialer: Dialer, control: CallControl, analytics: httpx.AsyncClient
) -> APIRouter:
    """The routes; `analytics` is a client of the analytics service (its owner closes it)."""
    router = APIRouter(prefix="/api/calls", tags=["calls"])

    @router.post("", status_code=201, dependencies=[requires(Scope.CALLS_WRITE)])
    async def place_call(call: OutboundCall) -> PlacedCall:
        """Place a phone call with an agent; follow it through its status events."""
        try:
            call_id = await dialer.dial(call)
        except CarrierNotConfiguredError as missing:
            raise HTTPException(503, str(missing)) from missing
        except DialError as refused:
            raise HTTPException(422, str(refused)) from refused
        return PlacedCall(call_id=call_id, to=call.to)

    async def command(call_id: str, sent: CallCommand) -> Accepted:
        if not await control.send(call_id, sent):
            raise HTTPException(404, f"call {call_id} is not live")
        log.info("call %s: %s requested through the API", call_id, sent.type)
        return Accepted(call_id=call_id, accepted=sent.type)

    @router.post("/{call_id}/hangup", status_code=202, dependencies=[requires(Scope.CALLS_WRITE)])
    async def hang_up(call_id: str, body: HangUpRequest | None = None) -> Accepted:
        return await command(call_id, HangUp(reason=(body or HangUpRequest()).reason))

    @router.post("/{call_id}/transfer", status_code=202, dependencies=[requires(Scope.CALLS_WRITE)])
    async def transfer(call_id: str, body: TransferCall) -> Accepted:
        """Hand the caller to another number (E.164) or SIP URI: a cold transfer."""
        return await command(call_id, body)

    @router.post("/{call_id}/dtmf", status_code=202, dependencies=[requires(Scope.CALLS_WRITE)])
    async def send_dtmf(call_id: str, body: SendDtmf) -> Accepted:
        """Press keys on the call (0-9, *, #, A-D; `w` waits half a second)."""
        return await command(call_id, body)

    @router.get("", dependencies=[requires(Scope.CALLS_READ)])
    async def list_calls(request: Request) -> Response:
        return await forward(analytics, request, owner=ANALYTICS)

    @router.get(".csv", dependencies=[requires(Scope.CALLS_READ)])
    async def export_calls(request: Request) -> Response:
        return await forward(analytics, request, owner=ANALYTICS)

    @router.get("/{call_id}", dependencies=[requires(Scope.CALLS_READ)])
    async def get_call(call_id: str, request: Request) -> Response:
        return await forward(analytics, request, owner=ANALYTICS)

    @router.get("/{call_id}/recording", dependencies=[requires(Scope.CALLS_READ)])
    async def get_recording(call_id: str, request: Request) -> Response:
        return await forward(analytics, request, owner=ANALYTICS)

    return router


def analytics_routes(*, analytics: httpx.AsyncClient) -> APIRouter:
    """Figures over the recorded calls, kept by analytics (`analytics` is a client of it)."""
    router = APIRouter(prefix="/api/analytics", tags=["analytics"])

    @router.get("/summary", dependencies=[requires(Scope.CALLS_READ)])
    async def summary(request: Request) -> Response:
        return await forward(analytics, request, owner=ANALYTICS)

    return router


def agents_routes(*, agent_service: httpx.AsyncClient) -> APIRouter:
    """The agents API, kept by the agent service (`agent_service` is a client of it)."""
    router = APIRouter(prefix="/api/agents", tags=["agents"])

    @router.get("", dependencies=[requires(Scope.AGENTS_READ)])
    async def list_agents(request: Request) -> Response:
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.post("", dependencies=[requires(Scope.AGENTS_WRITE)])
    async def create_agent(request: Request) -> Response:
        """Create an agent (an AgentSpec); 409 if its id or one of its numbers is taken."""
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.get("/{agent_id}", dependencies=[requires(Scope.AGENTS_READ)])
    async def get_agent(agent_id: str, request: Request) -> Response:
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.put("/{agent_id}", dependencies=[requires(Scope.AGENTS_WRITE)])
    async def replace_agent(agent_id: str, request: Request) -> Response:
        """Replace the agent with this AgentSpec; calls started from now on use it."""
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.delete("/{agent_id}", dependencies=[requires(Scope.AGENTS_WRITE)])
    async def delete_agent(agent_id: str, request: Request) -> Response:
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    return router


def knowledge_routes(*, agent_service: httpx.AsyncClient) -> APIRouter:
    """The knowledge bases' API, kept by the agent service (`agent_service` is a client of
    it)."""
    router = APIRouter(prefix="/api/knowledge-bases/{kb_id}", tags=["knowledge bases"])

    @router.post("/documents", dependencies=[requires(Scope.AGENTS_WRITE)])
    async def add_document(kb_id: str, request: Request) -> Response:
        """Upload a document (multipart `file`: text, Markdown or PDF) into knowledge base
        `kb_id`; one of the same name is replaced."""
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.get("/documents", dependencies=[requires(Scope.AGENTS_READ)])
    async def list_documents(kb_id: str, request: Request) -> Response:
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.delete("/documents/{name}", dependencies=[requires(Scope.AGENTS_WRITE)])
    async def remove_document(kb_id: str, name: str, request: Request) -> Response:
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    @router.post("/search", dependencies=[requires(Scope.AGENTS_READ)])
    async def search(kb_id: str, request: Request) -> Response:
        """`{"query", "limit"?}`: the passages nearest in meaning, best first."""
        return await forward(agent_service, request, owner=AGENT_SERVICE)

    return router
