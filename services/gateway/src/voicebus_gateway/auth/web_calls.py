"""Web call tokens: a browser cannot put an API key on a WebSocket (nor should a page hold
one), so `POST /api/web-calls`, called with a key, hands out a token that opens one web call
with one agent, once, within a short time.

A token is 256 random bits kept in Redis under its SHA-256, holding the agent it is for, with
the token's lifetime as the entry's: unforgeable and bound to its agent and expiry as a signed
token would be, and also single-use (taken with GETDEL), with no signing key to share between
replicas or rotate.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

TOKEN_PREFIX = "voicebus:web-call-token:"
_TOKEN = re.compile(r"vbw_[A-Za-z0-9_-]{43}")


class WebCallTokenError(ValueError):
    """A web call's token is missing, unknown, expired, used already or for another agent."""


class WebCallGrant(BaseModel):
    """A token for one web call: open `/web/call?token=<token>` before `expires_at`."""

    token: str
    agent_id: str
    """The agent the call talks to; `agent_id` on the socket's URL may only repeat it."""
    expires_at: datetime


def _entry(token: str) -> str:
    return TOKEN_PREFIX + hashlib.sha256(token.encode()).hexdigest()


class WebCallTokens:
    """Tokens for web calls, each valid `ttl_s` and once, on any gateway replica."""

    def __init__(self, redis: Redis, *, ttl_s: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1, math.ceil(ttl_s * 1000))

    async def issue(self, agent_id: str) -> WebCallGrant:
        token = f"vbw_{secrets.token_urlsafe(32)}"
        expires_at = datetime.fromtimestamp(time.time() + self._ttl_ms / 1000, UTC)
        await self._redis.set(_entry(token), agent_id, px=self._ttl_ms)
        return WebCallGrant(token=token, agent_id=agent_id, expires_at=expires_at)

    async def redeem(self, token: str | None, *, agent_id: str | None) -> str:
        """The agent `token` opens a call with, the token used up; `agent_id`, if the client
        named one, must be that agent. Raises WebCallTokenError otherwise."""
        if not token:
            raise WebCallTokenError("a web call needs a token: POST /api/web-calls with an API key")
        if not _TOKEN.fullmatch(token):
            raise WebCallTokenError("malformed web call token")
        granted = await self._redis.getdel(_entry(token))
        if granted is None:
            raise WebCallTokenError("web call token unknown, expired or used already")
        agent = granted.decode() if isinstance(granted, bytes) else granted
        if agent_id is not None and agent_id != agent:
            raise WebCallTokenError(f"this web call token is for agent {agent}, not {agent_id}")
        return agent
