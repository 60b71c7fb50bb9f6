"""Access to the API over HTTP: every /api route declares the scope it needs with `requires`,
and the app's `Access` decides (a key, known, not revoked, within its rate, with the scope).

The key travels as `Authorization: Bearer <key>`, and only there: not in a query string (which
servers, proxies and browsers log and keep), nor in a cookie (which any page's form could send
along). Answers: 401 with `WWW-Authenticate: Bearer` without a valid key, 403 for a key without
the scope, 429 with `Retry-After` past the key's rate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, params
from fastapi.routing import RouteContext
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from voicebus_gateway.auth.keys import ApiKey, ApiKeys
from voicebus_gateway.auth.limits import RateLimits
from voicebus_gateway.auth.scopes import Scope

log = logging.getLogger(__name__)

BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="vb_<id>_<secret>",
    description="An API key (python -m voicebus_gateway keys create); docs/security.md.",
)


def _unauthenticated(detail: str, *, invalid: bool) -> HTTPException:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


class Access:
    """Who may call the API. With `keys_required` False (a gateway only this machine reaches,
    VOICEBUS_AUTH=auto or off) everyone may, and keys are not looked at."""

    def __init__(self, *, keys: ApiKeys, limits: RateLimits, keys_required: bool) -> None:
        self._keys = keys
        self._limits = limits
        self.keys_required = keys_required

    async def admit(
        self, credentials: HTTPAuthorizationCredentials | None, needed: Sequence[str]
    ) -> ApiKey | None:
        """The caller's key, if it may do what needs `needed`; raises the HTTP refusal if not.
        None when keys are not required."""
        if not self.keys_required:
            return None
        if credentials is None:
            raise _unauthenticated(
                "an API key is required: send it as Authorization: Bearer <key>", invalid=False
            )
        key = await self._keys.verify(credentials.credentials)
        if key is None:
            raise _unauthenticated("the API key is not valid", invalid=True)
        if key.revoked_at is not None:
            log.info("API key %s (%s) refused: revoked", key.id, key.name)
            raise _unauthenticated("the API key was revoked", invalid=True)
        wait = await self._limits.take(key.id)
        if wait is not None:
            raise HTTPException(
                429,
                f"API key {key.id} is over its rate limit: retry later",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        for scope in needed:
            if not key.allows(Scope(scope)):
                log.info("API key %s (%s) refused: it lacks %s", key.id, key.name, scope)
                raise HTTPException(403, f"API key {key.id} lacks the scope {scope}")
        return key


async def _authorized(
    request: Request,
    needed: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> ApiKey | None:
    # The app's Access (create_app sets it); an app without one fails closed, with a 500.
    access: Access = request.app.state.access
    return await access.admit(credentials, needed.scopes)


def requires(scope: Scope) -> Any:
    """A route's declaration that it needs `scope`: `dependencies=[requires(Scope.X)]`."""
    return Security(_authorized, scopes=[scope])


def declared_scopes(route: RouteContext) -> list[str]:
    """The scopes `route` (as `fastapi.routing.iter_route_contexts` tells an app's routes)
    declares with `requires`, its routers' declarations included."""
    return [
        scope
        for dependency in route.dependencies
        if isinstance(dependency, params.Security) and dependency.dependency is _authorized
        for scope in dependency.scopes or ()
    ]
