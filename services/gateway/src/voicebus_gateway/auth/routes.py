"""`POST /api/web-calls`: a token for one web call, for a client with a key (or anyone, when
keys are not required)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from voicebus_gateway.auth.access import requires
from voicebus_gateway.auth.scopes import Scope
from voicebus_gateway.auth.web_calls import WebCallGrant, WebCallTokens
from voicebus_gateway.web.call import MAX_AGENT_ID_CHARS


class WebCallRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str | None = Field(default=None, min_length=1, max_length=MAX_AGENT_ID_CHARS)
    """The agent to talk to; None: the default agent."""


def web_call_token_routes(*, tokens: WebCallTokens, default_agent: str) -> APIRouter:
    router = APIRouter(prefix="/api/web-calls", tags=["web"])

    @router.post("", status_code=201, dependencies=[requires(Scope.CALLS_WRITE)])
    async def grant_web_call(body: WebCallRequest | None = None) -> WebCallGrant:
        """A token that opens one web call with the agent (`/web/call?token=<token>`), once,
        within a short time (VOICEBUS_GATEWAY_WEB_CALL_TOKEN_TTL_S)."""
        return await tokens.issue((body and body.agent_id) or default_agent)

    return router
