"""TwiML: connect a call to our media stream, or hand it over to another number."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from twilio.twiml.voice_response import Connect, Dial, Stream, VoiceResponse

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


def connect_to_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """TwiML that streams the call both ways to `stream_url`, with `parameters` for the stream.

    Twilio forbids a query string in the stream URL; <Parameter>s reach the stream's `start`.
    """
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return str(response)


def dial(to: str) -> str:
    """TwiML that hands the call to `to`, a phone number or a SIP URI (a cold transfer)."""
    response = VoiceResponse()
    target = Dial()
    if to.startswith("sip:"):
        target.sip(to)
    else:
        target.number(to)
    response.append(target)
    return str(response)
