"""The TwiML answer to Twilio's voice webhook: connect the call to our media stream."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.twiml.voice_response import (
    Connect,
    Stream,
    VoiceResponse,
)

MEDIA_PATH = "/twilio/media"


def media_stream_url(*, public_url: str | None, host: str) -> str:
    """The WebSocket URL Twilio streams the call to.

    From `public_url` when set (https -> wss, http -> ws, its path kept as a prefix); else from the
    webhook request's Host, always wss because Twilio only streams to secure WebSockets.
    """
    if public_url is None:
        return f"wss://{host}{MEDIA_PATH}"
    parts = urlsplit(public_url)
    scheme = "ws" if parts.scheme.lower() == "http" else "wss"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + MEDIA_PATH, "", ""))


def connect_to_stream(
    stream_url: str, *, agent_id: str, from_number: str | None, to_number: str | None
) -> str:
    """TwiML that streams the call both ways to `stream_url`, telling the stream who it is for."""
    stream = Stream(url=stream_url)
    stream.parameter(name="agent_id", value=agent_id)
    if from_number:
        stream.parameter(name="From", value=from_number)
    if to_number:
        stream.parameter(name="To", value=to_number)
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return str(response)
