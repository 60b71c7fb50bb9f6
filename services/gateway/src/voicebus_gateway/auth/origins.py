"""Which web pages may use the gateway from a browser: its own (the dashboard), and the
origins in VOICEBUS_CORS_ORIGINS.

For the API, that is CORS: without listed origins there is no CORS at all, and browsers keep
other pages from reading any answer. A WebSocket is not covered by CORS (any page may open
one), so `/web/call` checks the Origin its browser sends against the same list; clients that
are not browsers send none, and are let in.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

PREFLIGHT_CACHE_S = 600


def allow_cross_origin(app: FastAPI, origins: Collection[str]) -> None:
    """Let pages of `origins` call the API from a browser, with an API key (no cookies)."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "Content-Disposition"],
        max_age=PREFLIGHT_CACHE_S,
    )


def origin_of(url: str) -> str:
    """The origin (`scheme://host[:port]`) of `url`, in lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def socket_origin_allowed(
    origin: str | None, *, host: str | None, allowed: Collection[str]
) -> bool:
    """Whether a WebSocket opened by a page of `origin` (None: not a browser) to the gateway
    at `host` (the Host header) may go on: the same origin as the gateway, or an allowed one."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if host is not None and parts.netloc.lower() == host.lower():
        return True
    return origin.lower() in allowed
