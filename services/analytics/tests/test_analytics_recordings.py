"""Downloading a call's recording: the WAV the gateway wrote, and nothing else on the disk."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from voicebus_analytics.recordings import recordings_router

SECRET = b"not a recording"


def write_recording(path: Path, *, seconds: float = 0.5, rate: int = 8_000) -> bytes:
    """A stereo PCM16 WAV, as the gateway writes them; its bytes."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(range(256)) * round(seconds * rate * 4 / 256))
    return path.read_bytes()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (tmp_path / "secret.wav").write_bytes(SECRET)
    return recordings


@pytest.fixture
async def client(directory: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(recordings_router(directory))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client


async def test_a_calls_recording_downloads_as_a_wav(
    client: httpx.AsyncClient, directory: Path
) -> None:
    written = write_recording(directory / "CA0123456789abcdef.wav")

    response = await client.get("/api/calls/CA0123456789abcdef/recording")

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert 'filename="CA0123456789abcdef.wav"' in response.headers["content-disposition"]
    assert response.content == written


async def test_a_call_with_no_recording_is_not_found(
    client: httpx.AsyncClient, directory: Path
) -> None:
    write_recording(directory / "CA1.wav")
    # A call still under way has only its hidden part file.
    write_recording(directory / ".web-2.wav.part")

    for call_id in ("CA2", "web-2"):
        response = await client.get(f"/api/calls/{call_id}/recording")
        assert response.status_code == 404
        assert response.json() == {"detail": f"no recording of call {call_id!r}"}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/calls/..%2Fsecret/recording", 404),  # a slash: no call id at all
        ("/api/calls/%2E%2E/recording", 422),
        ("/api/calls/CA1.wav/recording", 422),
        ("/api/calls/.CA1.wav.part/recording", 422),
        (f"/api/calls/{'C' * 129}/recording", 422),
    ],
)
async def test_anything_but_a_plain_call_id_is_refused(
    client: httpx.AsyncClient, directory: Path, path: str, status: int
) -> None:
    write_recording(directory / "CA1.wav")
    write_recording(directory / ".CA1.wav.part")

    response = await client.get(path)

    assert response.status_code == status
    assert response.content != SECRET
    assert "audio/wav" not in response.headers.get("content-type", "")
