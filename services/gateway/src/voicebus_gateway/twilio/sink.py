"""Playback to a Twilio Media Stream: audio, marks and clears as the stream's JSON messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from voicebus_gateway.twilio.protocol import clear_message, mark_message, media_message


class TwilioSink:
    """An AudioSink writing to one Twilio stream's WebSocket through `send_text`."""

    def __init__(self, *, stream_sid: str, send_text: Callable[[str], Awaitable[None]]) -> None:
        self._stream_sid = stream_sid
        self._send_text = send_text

    async def send_audio(self, audio: bytes) -> None:
        await self._send_text(media_message(self._stream_sid, audio))

    async def send_mark(self, name: str) -> None:
        await self._send_text(mark_message(self._stream_sid, name))

    async def clear(self) -> None:
        await self._send_text(clear_message(self._stream_sid))
