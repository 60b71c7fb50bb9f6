"""Call recordings, downloaded: the gateway writes each call's stereo WAV (the caller left, the
agent right) as `<call_id>.wav` into the recordings directory, which this router serves."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import FileResponse

CALL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
"""A plain call id (Twilio's CallSid, `web-<hex>`), the only kind the gateway records: it names
a file in the directory, never a path out of it."""

CallId = Annotated[str, Path(pattern=CALL_ID_PATTERN)]


def recordings_router(directory: FilePath) -> APIRouter:
    """`GET /api/calls/{call_id}/recording`: the call's recording from `directory`."""
    router = APIRouter(prefix="/api/calls", tags=["calls"])

    @router.get(
        "/{call_id}/recording",
        response_class=FileResponse,
        responses={
            200: {"content": {"audio/wav": {}}, "description": "16-bit stereo WAV"},
            404: {"description": "No recording of this call"},
            422: {"description": "Not a call id"},
        },
    )
    async def get_recording(call_id: CallId) -> FileResponse:
        """The call's recording: a 16-bit stereo WAV, the caller on the left channel and the
        agent (what the caller heard of it) on the right, from the call's start to its end."""
        path = directory / f"{call_id}.wav"
        if not await asyncio.to_thread(path.is_file):
            raise HTTPException(status_code=404, detail=f"no recording of call {call_id!r}")
        return FileResponse(path, media_type="audio/wav", filename=path.name)

    return router
