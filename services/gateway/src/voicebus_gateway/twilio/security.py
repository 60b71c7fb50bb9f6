"""Proof that a request comes from Twilio: webhook signatures, and media-stream tokens.

Twilio signs each webhook with the account's auth token over the URL it requested and the
form's fields (X-Twilio-Signature). Behind a proxy the URL we see is not the one Twilio signed,
so it is rebuilt from VOICEBUS_PUBLIC_URL. The media stream carries no signature, so the TwiML
answer to a verified webhook hands it a short-lived token, bound to the call and to every other
parameter of the stream (its agent, its numbers), so none of them can be swapped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

_TOKEN_LABEL = b"voicebus media-stream token v1"
TOKEN_PARAMETER = "token"
"""The stream parameter that carries the token."""


_EXPIRY = re.compile(r"[0-9]{1,12}")
"""A token's expiry: epoch seconds, in ASCII digits."""


class StreamTokenError(ValueError):
    """A media stream's token is missing, forged, for another call or expired."""


def signed_url(*, public_url: str | None, request_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: our public address when we have one, else the URL as received."""
    if public_url is None:
        return request_url
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")


class WebhookVerifier:
    """Checks X-Twilio-Signature with the account's auth token."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def verify(self, url: str, form: Mapping[str, str], signature: str | None) -> bool:
        if not signature:
            return False
        return bool(self._validator.validate(url, dict(form), signature))


class StreamTokens:
    """Tokens that let one call's media stream in, for `ttl_s` after its webhook was answered.

    The key is derived from the auth token, so every gateway replica issues and accepts the same
    tokens with no other secret to share.
    """

    def __init__(self, auth_token: str, *, ttl_s: float) -> None:
        self._key = hmac.new(auth_token.encode(), _TOKEN_LABEL, hashlib.sha256).digest()
        self._ttl_s = ttl_s

    def issue(
        self, call_id: str, parameters: Mapping[str, str], *, now: float | None = None
    ) -> str:
        """A token for the stream of `call_id` carrying `parameters`."""
        expires = int((time.time() if now is None else now) + self._ttl_s)
        return f"{expires}.{self._sign(call_id, parameters, expires)}"

    def check(self, token: str | None, call_id: str, parameters: Mapping[str, str]) -> None:
        """Raises StreamTokenError unless `token` was issued for this call and these parameters
        (the token itself excluded), and has not expired."""
        if not token:
            raise StreamTokenError("no stream token: streams are accepted only from our TwiML")
        expires_text, _, signature = token.partition(".")
        # Only what we issue: ASCII digits (not any Unicode digit, nor more than an epoch has)
        # and an ASCII signature (compare_digest refuses other text).
        if not _EXPIRY.fullmatch(expires_text) or not signature.isascii() or not signature:
            raise StreamTokenError("malformed stream token")
        expires = int(expires_text)
        if not hmac.compare_digest(signature, self._sign(call_id, parameters, expires)):
            raise StreamTokenError("stream token not valid for this call")
        if expires < time.time():
            raise StreamTokenError("stream token expired")

    def _sign(self, call_id: str, parameters: Mapping[str, str], expires: int) -> str:
        fields = sorted((k, v) for k, v in parameters.items() if k != TOKEN_PARAMETER)
        message = json.dumps([call_id, expires, fields]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
