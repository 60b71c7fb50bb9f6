"""Telling an agent's webhook that one of its calls ended: a signed POST, retried, each attempt
logged in the store (numbered on from the attempts logged before, so a delivery taken up again
after a restart goes on counting).

The body is `{"event": "call.ended", "call": <the call as GET /api/calls/{id} shows it>}`. It is
signed with the agent's secret (HMAC-SHA256 over `<X-Voicebus-Timestamp>.<raw body>`, sent as
`X-Voicebus-Signature: sha256=<hex>`), so a receiver can check who sent it and refuse a replay
whose timestamp is old. Redirects are answers, not followed (a POST re-sent elsewhere is not
what the agent configured).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from voicebus_analytics.ports import CallStore
from voicebus_analytics.records import DeliveryAttempt
from voicebus_analytics.views import CallDetail
from voicebus_contracts.agents import SECRET_ENV_PREFIX, PostCall

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Voicebus-Signature"
TIMESTAMP_HEADER = "X-Voicebus-Timestamp"
MAX_ERROR_CHARS = 500


class CallEndedWebhook(BaseModel):
    """What the webhook receives."""

    model_config = ConfigDict(frozen=True)

    event: Literal["call.ended"] = "call.ended"
    call: CallDetail


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Voicebus-Signature` of `body` sent at `timestamp` (Unix seconds)."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _retried(status_code: int) -> bool:
    """Whether an answer is worth another attempt: the receiver's trouble, or its throttling."""
    return status_code >= 500 or status_code == 429


class Webhooks:
    """Posts each concluded call to its agent's webhook (a CallEndedListener).

    Up to `attempts` attempts: on a network error, a 5xx or a 429 the next comes after
    `backoff_s`, then twice as long each time (1, 2, 4, 8 s by default); any other answer ends
    the delivery. Secrets are read from `secrets` (the environment) when a delivery starts.
    """

    def __init__(
        self,
        *,
        store: CallStore,
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        secrets: Mapping[str, str] = os.environ,
    ) -> None:
        self._store = store
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._secrets = secrets
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def call_ended(self, call: CallDetail, post_call: PostCall) -> None:
        if post_call.webhook_url is not None:
            await self._deliver(call, post_call.webhook_url, post_call.webhook_secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _deliver(self, call: CallDetail, url: str, secret_name: str | None) -> None:
        where = urlsplit(url).netloc
        made = len(await self._store.deliveries(call.call_id))
        variable = None if secret_name is None else SECRET_ENV_PREFIX + secret_name
        secret = None if variable is None else self._secrets.get(variable)
        if secret is None:
            why = (
                "the agent names no webhook_secret"
                if variable is None
                else f"secret {variable} is not set in analytics' environment"
            )
            log.error("call %s: webhook to %s not sent: %s", call.call_id, where, why)
            await self._log(call.call_id, url, made + 1, None, f"not sent: {why}")
            return
        body = CallEndedWebhook(call=call).model_dump_json().encode()
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 2))
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            status_code, error = await self._post(url, body, headers)
            await self._log(call.call_id, url, made + attempt, status_code, error)
            if status_code is not None and not _retried(status_code):
                if status_code >= 300:
                    log.error(
                        "call %s: webhook to %s refused (%d), not retried",
                        call.call_id,
                        where,
                        status_code,
                    )
                return
            log.warning(
                "call %s: webhook to %s attempt %d of %d failed: %s",
                call.call_id,
                where,
                attempt,
                self._attempts,
                status_code or error,
            )
        log.error(
            "call %s: webhook to %s gave up after %d attempts", call.call_id, where, self._attempts
        )

    async def _post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int | None, str | None]:
        """The receiver's status code, or why none came."""
        try:
            response = await self._http.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as failed:
            return None, (str(failed) or type(failed).__name__)[:MAX_ERROR_CHARS]
        return response.status_code, None

    async def _log(
        self, call_id: str, url: str, attempt: int, status_code: int | None, error: str | None
    ) -> None:
        await self._store.record_delivery(
            DeliveryAttempt(
                call_id=call_id,
                url=url,
                attempt=attempt,
                status_code=status_code,
                error=error,
                at=datetime.now(UTC),
            )
        )
