"""A simulated web caller: speaks voicebus's web call protocol (docs/web-call.md) to a gateway.

Like a browser with its microphone open, it sends a 20 ms frame of PCM16 16 kHz every 20 ms,
speech when some is queued, silence otherwise. It records the agent's audio and every JSON
message as they arrive, and plays the audio on a simulated speaker in real time: it reports a
mark `played` once the audio received before it has played, and drops what it buffered on
`clear`, as a browser's player does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt
import websockets
from websockets.asyncio.client import ClientConnection

from voicebus_contracts import SPEECH_16K
from voicebus_devstack.caller import HeardAudio

FRAME_BYTES = 640
"""20 ms of PCM16 at 16 kHz."""
FRAME_S = 0.020
BYTES_PER_S = SPEECH_16K.sample_rate * SPEECH_16K.bytes_per_sample
SILENCE = bytes(FRAME_BYTES)
START_TIMEOUT_S = 10.0
"""How long the gateway may take to answer with `call.started`."""
HANG_UP_TIMEOUT_S = 5.0
"""How long the gateway may take to answer a hang-up with `call.ended` and a close."""
POLL_S = 0.02

Message = dict[str, Any]


class WebCallRefusedError(Exception):
    """The gateway did not start a call: its first message was not `call.started`."""


class WebCaller:
    """One simulated web call; use as `async with WebCaller(url) as caller:`.

    `url` is the gateway's call endpoint, `ws://127.0.0.1:8080/web/call`; `token` is a web call
    token from `POST /api/web-calls`, for a gateway that requires API keys (docs/security.md).
    """

    def __init__(self, url: str, *, agent_id: str | None = None, token: str | None = None) -> None:
        query = {
            name: value
            for name, value in (("agent_id", agent_id), ("token", token))
            if value is not None
        }
        self.url = f"{url}?{urlencode(query)}" if query else url
        self.call_id = ""
        """The gateway's id for the call, once it started."""
        self.agent_id = ""
        self.heard = HeardAudio()
        """The agent's audio as received (wall-clock times), the marks and the clears."""
        self.messages: list[Message] = []
        """Every JSON message the gateway sent, in order."""
        self.closed = asyncio.Event()
        """Set when the gateway closes the socket."""
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._speech: asyncio.Queue[bytes] = asyncio.Queue()
        self._spoken = asyncio.Event()
        self._speaker_due = 0.0
        """When (monotonic) the speaker has played all it received."""
        self._unplayed: deque[tuple[float, str]] = deque()
        """Marks received and when the audio before each has played."""
        self._unplayed_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> WebCaller:
        self._ws = await websockets.connect(self.url, max_size=2**20)
        try:
            first = json.loads(await asyncio.wait_for(self._ws.recv(), START_TIMEOUT_S))
            if first.get("type") != "call.started":
                raise WebCallRefusedError(f"the gateway answered {first}")
            audio = first["audio"]
            if (audio["encoding"], audio["sample_rate"], audio["channels"]) != (
                SPEECH_16K.encoding,
                SPEECH_16K.sample_rate,
                SPEECH_16K.channels,
            ):
                raise WebCallRefusedError(f"the call's audio is {audio}, not PCM16 16 kHz mono")
        except BaseException:
            await self._ws.close()
            raise
        self.messages.append(first)
        self.call_id = first["call_id"]
        self.agent_id = first["agent_id"]
        self._tasks = [
            asyncio.create_task(self._microphone(self._ws), name=f"{self.call_id}-microphone"),
            asyncio.create_task(self._listen(self._ws), name=f"{self.call_id}-listen"),
            asyncio.create_task(self._speaker(self._ws), name=f"{self.call_id}-speaker"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.hang_up()

    async def say(self, pcm16: bytes | npt.NDArray[np.int16]) -> float:
        """Speak PCM16 16 kHz mono in real time; returns the time the last frame went out."""
        audio = pcm16 if isinstance(pcm16, bytes) else pcm16.astype("<i2").tobytes()
        self._spoken.clear()
        for start in range(0, len(audio), FRAME_BYTES):
            self._speech.put_nowait(audio[start : start + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
        await self._spoken.wait()
        return time.time()

    async def press(self, digit: str) -> None:
        """Press a key of the client's keypad (0-9, *, #, A-D)."""
        await self._send({"type": "dtmf", "digit": digit})

    async def wait_for_agent_audio(
        self, *, after: float, quiet_s: float = 1.0, timeout_s: float = 60.0
    ) -> bytes:
        """Wait for the agent to speak after `after` and then fall quiet for `quiet_s`."""
        return await self.heard.agent_turn(after=after, quiet_s=quiet_s, timeout_s=timeout_s)

    def messages_of(self, kind: str) -> list[Message]:
        """The JSON messages of type `kind` received so far, in order."""
        return [m for m in self.messages if m["type"] == kind]

    async def wait_for_message(
        self,
        kind: str,
        *,
        where: Callable[[Message], bool] = lambda _: True,
        timeout_s: float = 60.0,
    ) -> Message:
        """The first message of type `kind` for which `where` holds, once it has arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.messages_of(kind):
                if where(message):
                    return message
            await asyncio.sleep(POLL_S)
        raise TimeoutError(f"no {kind!r} message of call {self.call_id} within {timeout_s} s")

    async def hang_up(self) -> None:
        """End the call as a hang-up button does: `hangup`, then wait for the gateway to answer
        `call.ended` and close. Safe to call again, and after the gateway has closed."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        microphone, *others = self._tasks
        await _cancel(microphone)  # nothing is said after hanging up
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(json.dumps({"type": "hangup"}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), HANG_UP_TIMEOUT_S)
        for task in others:
            await _cancel(task)
        await ws.close()

    async def _send(self, message: Message) -> None:
        if self._ws is None:
            raise RuntimeError(f"call {self.call_id} is not connected")
        await self._ws.send(json.dumps(message))

    async def _microphone(self, ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            start = time.monotonic()
            sent = 0
            while True:
                if self._speech.empty():
                    frame = SILENCE
                    self._spoken.set()
                else:
                    frame = self._speech.get_nowait()
                await ws.send(frame)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * FRAME_S - time.monotonic()))

    async def _listen(self, ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                if isinstance(raw, bytes):
                    self._play(raw)
                else:
                    self._hear(json.loads(raw))
        self.close_code = ws.close_code
        self.closed.set()

    def _play(self, audio: bytes) -> None:
        self.heard.frames.append((time.time(), audio))
        now = time.monotonic()
        self._speaker_due = max(self._speaker_due, now) + len(audio) / BYTES_PER_S

    def _hear(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "mark":
            self.heard.marks.append(message["name"])
            self._unplayed.append((max(self._speaker_due, time.monotonic()), message["name"]))
            self._unplayed_changed.set()
        elif message["type"] == "clear":
            self.heard.clears.append(time.time())
            # Dropped audio is not played, and its marks are never reported.
            self._speaker_due = time.monotonic()
            self._unplayed.clear()
            self._unplayed_changed.set()

    async def _speaker(self, ws: ClientConnection) -> None:
        """Report each mark `played` when the audio received before it has played."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                self._unplayed_changed.clear()
                if not self._unplayed:
                    await self._unplayed_changed.wait()
                    continue
                due, name = self._unplayed[0]
                wait_s = due - time.monotonic()
                if wait_s > 0:
                    # A clear (or nothing) meanwhile: look again either way.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._unplayed_changed.wait(), wait_s)
                    continue
                self._unplayed.popleft()
                await ws.send(json.dumps({"type": "played", "mark": name}))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
