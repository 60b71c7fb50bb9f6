"""The dashboard: plain HTML, CSS and JavaScript modules in `static/`, no build step, served at
`/`; its pages read the public API and the live feed like any other client (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
FILES_PATH = "/dashboard"
"""Where the page's scripts, styles and audio worklets are served from."""
REVALIDATE = {"cache-control": "no-cache"}
"""Kept by the browser but checked before each use (an ETag answered by 304): files named
without a content hash must not outlive an upgrade in a cache."""
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        # Recordings are fetched with the API key and played from memory.
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
"""The page runs only its own files: no inline script, nothing from elsewhere."""


class _RevalidatedFiles(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(REVALIDATE)
        return response


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard on `app`: its page at `/`, its files under FILES_PATH."""
    app.mount(FILES_PATH, _RevalidatedFiles(directory=STATIC), name="dashboard")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={**REVALIDATE, "content-security-policy": CONTENT_SECURITY_POLICY},
        )
