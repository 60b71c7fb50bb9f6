"""When the API needs a key (VOICEBUS_AUTH): `auto` leaves it open only while nothing but this
machine can reach the gateway, `required` always asks, `off` never does and is refused where
others could reach it.

Reachable by others means listening on anything but a loopback address, or being published at
a public URL that is not a loopback one: a gateway on 127.0.0.1 behind a tunnel or a proxy on
the same host (the README's way to take real phone calls) is public all the same.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

AuthMode = Literal["auto", "required", "off"]


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, or `localhost`) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


def exposure(*, host: str, public_url: str | None) -> str | None:
    """Why others than this machine can reach the gateway, or None if they cannot."""
    if not is_loopback(host):
        return f"it listens on {host} (VOICEBUS_HOST)"
    if public_url is not None and not is_loopback(urlsplit(public_url).hostname or ""):
        return f"it is published at {public_url} (VOICEBUS_PUBLIC_URL)"
    return None


def keys_required(mode: AuthMode, *, host: str, public_url: str | None) -> bool:
    """Whether every API call must carry a key."""
    if mode == "auto":
        return exposure(host=host, public_url=public_url) is not None
    return mode == "required"


def refusal(mode: AuthMode, *, host: str, public_url: str | None) -> str | None:
    """Why the gateway must not start with `mode`, or None if it may."""
    if mode != "off":
        return None
    exposed = exposure(host=host, public_url=public_url)
    if exposed is None:
        return None
    return (
        f"VOICEBUS_AUTH=off leaves the API open to anyone who reaches the gateway, and {exposed}: "
        "leave VOICEBUS_AUTH at auto (or required) and use an API key (python -m "
        "voicebus_gateway keys create)"
    )
