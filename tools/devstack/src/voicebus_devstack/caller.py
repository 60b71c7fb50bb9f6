"""A simulated Twilio caller: speaks the Twilio Media Streams protocol to a voicebus gateway.

Like the real Twilio, its microphone never stops: a 20 ms mu-law frame goes out every 20 ms, speech
when there is some queued, silence otherwise. It records the agent's audio as it arrives and echoes
marks back the way Twilio does once the audio before them has played.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import websockets

FRAME_BYTES = 160
"""20 ms of mu-law at 8 kHz."""
FRAME_S = 0.020
MULAW_SILENCE = b"\xff"


@dataclass
class HeardAudio:
    """Agent audio as the caller received it."""

    frames: list[tuple[float, bytes]] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)

    def since(self, t: float) -> bytes:
        return b"".join(payload for at, payload in self.frames if at >= t)

    @property
    def last_at(self) -> float | None:
        return self.frames[-1][0] if self.frames else None


class TwilioCaller:
    """One simulated call; use as `async with TwilioCaller(url) as caller:`."""

    def __init__(
        self,
        url: str,
        *,
        call_sid: str | None = None,
        from_number: str = "+15550100001",
        to_number: str = "+15550100002",
        custom_parameters: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.call_sid = call_sid or f"CA{uuid.uuid4().hex}"
        self.stream_sid = f"MZ{uuid.uuid4().hex}"
        self._from = from_number
        self._to = to_number
        self._parameters = custom_parameters or {}
        self.heard = HeardAudio()
        self._speech: asyncio.Queue[bytes] = asyncio.Queue()
        self._spoken = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ws: Any = None
        self._sent_frames = 0
        self._sequence = 0
        """Twilio numbers every message it sends on the stream, from 1."""

    async def __aenter__(self) -> TwilioCaller:
        self._ws = await websockets.connect(self.url, max_size=2**22)
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": {"From": self._from, "To": self._to, **self._parameters},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self._tasks = [
            asyncio.create_task(self._microphone(), name="caller-microphone"),
            asyncio.create_task(self._listen(), name="caller-listen"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hang_up()

    async def say(self, mulaw: bytes) -> float:
        """Speak `mulaw` (8 kHz) in real time; returns the time the last frame went out."""
        self._spoken.clear()
        for start in range(0, len(mulaw), FRAME_BYTES):
            frame = mulaw[start : start + FRAME_BYTES]
            self._speech.put_nowait(frame.ljust(FRAME_BYTES, MULAW_SILENCE))
        await self._spoken.wait()
        return time.time()

    async def wait_for_agent_audio(
        self, *, after: float, quiet_s: float = 1.0, timeout_s: float = 60.0
    ) -> bytes:
        """Wait for the agent to speak after `after` and then fall quiet for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self.heard.last_at
            if last is not None and last >= after and time.time() - last >= quiet_s:
                return self.heard.since(after)
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no agent audio after {after} within {timeout_s} s")

    async def hang_up(self) -> None:
        if self._ws is None:
            return
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(
                {
                    "event": "stop",
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
                }
            )
        await self._ws.close()
        self._ws = None

    async def _send(self, message: dict[str, Any]) -> None:
        if message["event"] != "connected":
            self._sequence += 1
            message["sequenceNumber"] = str(self._sequence)
        await self._ws.send(json.dumps(message))

    async def _microphone(self) -> None:
        start = time.monotonic()
        while True:
            if self._speech.empty():
                frame = MULAW_SILENCE * FRAME_BYTES
                self._spoken.set()
            else:
                frame = self._speech.get_nowait()
            await self._send(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._sent_frames + 1),
                        "timestamp": str(self._sent_frames * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self._sent_frames += 1
            await asyncio.sleep(max(0.0, start + self._sent_frames * FRAME_S - time.monotonic()))

    async def _listen(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            event = message.get("event")
            if event == "media":
                self.heard.frames.append(
                    (time.time(), base64.b64decode(message["media"]["payload"]))
                )
            elif event == "mark":
                name = message["mark"]["name"]
                self.heard.marks.append(name)
                await self._send(
                    {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
                )
            elif event == "clear":
                self.heard.clears.append(time.time())
