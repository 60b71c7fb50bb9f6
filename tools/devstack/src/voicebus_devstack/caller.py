"""A simulated Twilio caller: speaks the Twilio Media Streams protocol to a voicebus gateway.

Like the real Twilio, its microphone never stops: a 20 ms mu-law frame goes out every 20 ms, speech
when there is some queued, silence otherwise. It records the agent's audio as it arrives and echoes
marks back the way Twilio does once the audio before them has played.

`dial_in` plays the step before: Twilio asking the voice webhook what to do with a call, signed the
way Twilio signs it, and following the `<Connect><Stream>` answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import websockets
from twilio.request_validator import RequestValidator

FRAME_BYTES = 160
"""20 ms of mu-law at 8 kHz."""
FRAME_S = 0.020
MULAW_SILENCE = b"\xff"

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_FROM = "+15550100001"
DEFAULT_TO = "+15550100002"
TWILIO_API_VERSION = "2010-04-01"
WEBHOOK_TIMEOUT_S = 15.0
"""How long Twilio waits for a webhook's answer before giving up on it."""
DTMF_DIGITS = frozenset("0123456789*#")


def new_call_sid() -> str:
    """A fresh id shaped like Twilio's: CA and 32 hex digits."""
    return f"CA{uuid.uuid4().hex}"


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

    async def agent_turn(self, *, after: float, quiet_s: float, timeout_s: float) -> bytes:
        """The agent's audio once it spoke after `after` and then fell quiet for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self.last_at
            if last is not None and last >= after and time.time() - last >= quiet_s:
                return self.since(after)
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no agent audio after {after} within {timeout_s} s")


class TwilioCaller:
    """One simulated call; use as `async with TwilioCaller(url) as caller:`."""

    def __init__(
        self,
        url: str,
        *,
        call_sid: str | None = None,
        from_number: str = DEFAULT_FROM,
        to_number: str = DEFAULT_TO,
        custom_parameters: dict[str, str] | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
    ) -> None:
        self.url = url
        self.call_sid = call_sid or new_call_sid()
        self.stream_sid = f"MZ{uuid.uuid4().hex}"
        self.account_sid = account_sid
        self.closed = asyncio.Event()
        """Set once the media socket has closed: the gateway hung up, or `hang_up` did."""
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
                    "accountSid": self.account_sid,
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
        return await self.heard.agent_turn(after=after, quiet_s=quiet_s, timeout_s=timeout_s)

    async def press(self, digit: str) -> None:
        """Press a key on the phone's keypad: Twilio's `dtmf` message for one digit."""
        if digit not in DTMF_DIGITS:
            raise ValueError(f"a keypad has 0-9, * and #, not {digit!r}")
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def wait_closed(self, timeout_s: float = 10.0) -> None:
        """Wait for the gateway to close the media socket (hang up); TimeoutError if it does not."""
        try:
            await asyncio.wait_for(self.closed.wait(), timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"the gateway kept call {self.call_sid} open for {timeout_s} s"
            ) from None

    async def hang_up(self) -> None:
        """End the stream the way Twilio does: `stop`, then close. Safe to call again, and after the
        gateway has closed the socket."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        # Cancel both before awaiting either: neither may send on the socket once it is let go.
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stop = {
            "event": "stop",
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(self._numbered(stop))
        await ws.close()
        self.closed.set()

    def _numbered(self, message: dict[str, Any]) -> str:
        if message["event"] != "connected":
            self._sequence += 1
            message["sequenceNumber"] = str(self._sequence)
        return json.dumps(message)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise RuntimeError(f"call {self.call_sid} is not connected")
        await self._ws.send(self._numbered(message))

    async def _microphone(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
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
                await asyncio.sleep(
                    max(0.0, start + self._sent_frames * FRAME_S - time.monotonic())
                )

    async def _listen(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                await self._hear(json.loads(raw))
        self.closed.set()

    async def _hear(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "media":
            self.heard.frames.append((time.time(), base64.b64decode(message["media"]["payload"])))
        elif event == "mark":
            name = message["mark"]["name"]
            self.heard.marks.append(name)
            await self._send(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
            )
        elif event == "clear":
            self.heard.clears.append(time.time())


class VoiceWebhookError(Exception):
    """The voice webhook did not answer with TwiML that connects the call to a media stream."""

    def __init__(self, url: str, status_code: int, body: str, reason: str) -> None:
        super().__init__(
            f"voice webhook {url} answered {status_code}: {reason}; body: {body[:500]!r}"
        )
        self.status_code = status_code
        self.body = body


async def dial_in(
    voice_url: str,
    *,
    auth_token: str,
    from_number: str = DEFAULT_FROM,
    to_number: str = DEFAULT_TO,
    call_sid: str | None = None,
    direction: str = "inbound",
    account_sid: str = DEFAULT_ACCOUNT_SID,
    http: httpx.AsyncClient | None = None,
) -> TwilioCaller:
    """Ask `voice_url` what to do with a call, as Twilio does, and return the (not yet entered)
    caller for the media stream its `<Connect><Stream>` names, carrying the stream's Parameters.

    The request is the form Twilio posts (CallStatus `ringing` for an inbound call, `in-progress`
    for one placed through the API, which Twilio only fetches TwiML for once answered), signed
    with X-Twilio-Signature by `auth_token`. Twilio only streams to wss://; when `voice_url` is
    plain http:// (a local stack without TLS) the stream's wss:// is followed as ws://.

    Raises VoiceWebhookError unless the answer is 200 with a `<Connect><Stream>`.
    """
    call_sid = call_sid or new_call_sid()
    params = {
        "AccountSid": account_sid,
        "ApiVersion": TWILIO_API_VERSION,
        "CallSid": call_sid,
        "CallStatus": "ringing" if direction == "inbound" else "in-progress",
        "Called": to_number,
        "Caller": from_number,
        "Direction": direction,
        "From": from_number,
        "To": to_number,
    }
    signature = str(RequestValidator(auth_token).compute_signature(voice_url, params))
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(httpx.AsyncClient())
        response = await client.post(
            voice_url,
            data=params,
            headers={"X-Twilio-Signature": signature},
            timeout=WEBHOOK_TIMEOUT_S,
        )
    if response.status_code != 200:
        raise VoiceWebhookError(voice_url, response.status_code, response.text, "expected 200")
    try:
        stream_url, parameters = media_stream_of(response.text)
    except ValueError as exc:
        raise VoiceWebhookError(voice_url, response.status_code, response.text, str(exc)) from exc
    return TwilioCaller(
        _reachable(stream_url, voice_url),
        call_sid=call_sid,
        from_number=from_number,
        to_number=to_number,
        custom_parameters=parameters,
        account_sid=account_sid,
    )


def media_stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    """The URL and Parameters of TwiML's `<Response><Connect><Stream>`; ValueError if none."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ValueError(f"not TwiML: {exc}") from exc
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    url = stream.get("url") if stream is not None else None
    if stream is None or not url:
        raise ValueError("no <Response><Connect><Stream url=...>")
    parameters = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    return url, parameters


def _reachable(stream_url: str, voice_url: str) -> str:
    """`stream_url` as a caller can reach it: ws:// instead of wss:// when the webhook is http://."""
    stream = urlsplit(stream_url)
    if urlsplit(voice_url).scheme == "http" and stream.scheme == "wss":
        return urlunsplit(stream._replace(scheme="ws"))
    return stream_url
