"""The gateway's secrets kept out of its logs, whoever logs them: our code, uvicorn (whose
access and WebSocket lines carry each request's query string: a web call's token is in it),
httpx, the twilio SDK.

Every record is scrubbed as it is made (the logging module's record factory), so it reaches
every handler already clean, whatever handlers are set up, before or after: API keys keep
their id (not secret, and what an operator looks for) and lose the rest; web call tokens,
bearer credentials and the values of query parameters that carry credentials are replaced.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
_SECRETS = (
    (re.compile(r"\b(vb_[0-9a-f]{16}_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
    (re.compile(r"\bvbw_[A-Za-z0-9_-]+"), f"vbw_{REDACTED}"),
    (re.compile(r"(\bbearer\s+)[^\s\"',}]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (
        re.compile(r"([?&](?:token|access_token|api_key|key)=)[^&\s\"'#]+", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
)


def scrub(text: str) -> str:
    """`text` without the secrets the gateway knows the shape of."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _ScrubbingFactory:
    """Makes records as the factory it wraps does, then scrubs their message (its arguments
    merged in: a secret is usually an argument)."""

    def __init__(self, make: Any) -> None:
        self._make = make

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self._make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            return record  # arguments that do not fit the message: the handler reports it
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record


def keep_secrets_out_of_logs() -> None:
    """Scrub every log record of this process from now on (once, however often called)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _ScrubbingFactory):
        logging.setLogRecordFactory(_ScrubbingFactory(current))
