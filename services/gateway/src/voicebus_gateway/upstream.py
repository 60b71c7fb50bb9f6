"""Passing API requests on to the service that owns what they ask for (analytics owns the call
records, the agent service the agents), and its answer back as it is."""

from __future__ import annotations

import logging

import httpx
from fastapi import Request, Response
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

FORWARDED_HEADERS = ("content-type", "accept")
ANSWERED_HEADERS = ("content-disposition",)
"""Headers of the service's answer passed back (the type goes as the media type)."""


async def forward(service: httpx.AsyncClient, request: Request, *, owner: str) -> Response:
    """`request` (method, path, query, body) sent to `service`; its status and body returned.
    A service that cannot be reached is a 503 naming it."""
    try:
        upstream = await service.request(
            request.method,
            # The path as the client sent it, still percent-encoded: decoded, a control
            # character in it would make an invalid URL here, not a refusal there.
            request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS},
        )
    except httpx.TransportError as exc:
        log.warning("%s unreachable at %s: %s", owner, service.base_url, exc)
        return JSONResponse(
            {"detail": f"{owner} unreachable at {service.base_url}"}, status_code=503
        )
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type"),
        headers={k: v for k, v in upstream.headers.items() if k in ANSWERED_HEADERS},
    )
