"""One log format for every service: text a person reads (the local supervisor prefixes each
line with the service), or JSON lines for a log pipeline, each with the service and the call
it is about.

The call comes from the context: bus handlers run inside their message's call (the broker's
middleware sets it from the message key), and HTTP or WebSocket code of one call enters
`call_context`. Records carry what the code logs, never a message's body.

Every line is scrubbed before it is written, whoever logged it (our code, a library, an
exception's message): what looks like a secret always (`redaction.SecretMask`), and personal
data (`redaction.redact`) when the service redacts it (VOICEBUS_REDACT_PII).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

from voicebus_runtime.metrics import count_error
from voicebus_runtime.redaction import SecretMask, redact

TEXT_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"

KAFKA_CLIENT_REPEAT_WINDOW_S = 10.0
"""The Kafka client's same line is logged (and counted as an error) once per this window."""
MAX_REPEAT_KEYS = 1000
"""Lines remembered for that; past it, those not seen within the window are forgotten."""
BROKER_LOGGER = "voicebus_runtime.bus.faststream"
"""FastStream's own lines about our brokers (errors in handlers, consumer trouble): a logger of
ours, so they go where and how the rest goes."""

_call_id: ContextVar[str | None] = ContextVar("voicebus_call_id", default=None)


def current_call_id() -> str | None:
    """The call the running code is about, if any."""
    return _call_id.get()


@contextmanager
def call_context(call_id: str) -> Iterator[None]:
    """Within, logs (and spans) are about call `call_id`; tasks started inside inherit it."""
    token = _call_id.set(call_id)
    try:
        yield
    finally:
        _call_id.reset(token)


class _TopicsAreProvisioned(logging.Filter):
    """FastStream warns that it will not create topics; ours are created before it subscribes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Auto create topics is disabled")


_TOPICS_ARE_PROVISIONED = _TopicsAreProvisioned()


class _Repeats(logging.Filter):
    """Lets one of each line of the loggers under `prefix` through per `window_s`, the next one
    through noting how many were held back: the Kafka client retries a lost broker about ten
    times a second per connection, and would bury the rest of an outage's story.

    The decision is kept on the record, so every handler (the output, the error count) takes
    the same one."""

    def __init__(self, prefix: str, *, window_s: float) -> None:
        super().__init__()
        self._prefix = prefix
        self._window_s = window_s
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        """Each line's key: when it last went through, and how many were held back since."""

    def filter(self, record: logging.LogRecord) -> bool:
        decided: bool | None = getattr(record, "voicebus_repeat_shown", None)
        if decided is not None:
            return decided
        shown = True
        if record.name.startswith(self._prefix):
            key = (record.name, record.levelno, str(record.msg) + repr(record.args))
            last, held = self._seen.get(key, (0.0, 0))
            if record.created - last < self._window_s:
                self._seen[key] = (last, held + 1)
                shown = False
            else:
                self._seen[key] = (record.created, 0)
                if held:
                    note = f"({held} more like it since it was last logged)"
                    record.msg, record.args = f"{record.getMessage()} {note}", None
                if len(self._seen) > MAX_REPEAT_KEYS:
                    self._forget_before(record.created - self._window_s)
        record.voicebus_repeat_shown = shown
        return shown

    def _forget_before(self, moment: float) -> None:
        self._seen = {key: seen for key, seen in self._seen.items() if seen[0] >= moment}


class _AboutTheCall(logging.Filter):
    """Stamps each record, as it is logged, with its call and trace (unless given as `extra`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = _call_id.get()
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        return True


class _Scrubbed(logging.Filter):
    """Passes each record's message (its arguments merged in), traceback and stack through
    `scrub` before a formatter reads them, in text and JSON alike."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._scrub = scrub
        self._tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # arguments that do not fit the message: the handler reports it
        clean = self._scrub(message)
        if clean != message:  # else its arguments stay, for whatever else reads them
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._tracebacks.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        return True


class _JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, service, call id,
    trace id, and the traceback of an exception."""

    def __init__(self, service: str | None) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._service is not None:
            line["service"] = self._service
        for field in ("call_id", "trace_id"):
            if (value := getattr(record, field, None)) is not None:
                line[field] = str(value)
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


class _CountErrors(logging.Handler):
    """Every error a service logs counts in `voicebus_errors_total`, its kind the logger's name:
    services log each error they survive, so the count needs no call of its own."""

    def __init__(self, service: str) -> None:
        super().__init__(level=logging.ERROR)
        self._service = service

    def emit(self, record: logging.LogRecord) -> None:
        count_error(self._service, record.name)


def configure_logging(
    level: str, *, json: bool = False, service: str | None = None, redact_pii: bool = False
) -> None:
    """Log at `level` to stderr, as text or (`json`) JSON lines naming `service`; with a
    `service`, its logged errors are also counted in the metrics.

    Secrets are masked in every line: the values of the environment's secrets as they are now,
    and what looks like one; with `redact_pii`, email addresses, phone and card numbers too."""
    mask = SecretMask(os.environ)
    repeats = _Repeats("aiokafka", window_s=KAFKA_CLIENT_REPEAT_WINDOW_S)
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(_JsonLines(service) if json else logging.Formatter(TEXT_FORMAT))
    out.addFilter(repeats)
    out.addFilter(_AboutTheCall())
    out.addFilter(_Scrubbed((lambda text: redact(mask(text))) if redact_pii else mask))
    handlers: list[logging.Handler] = [out]
    if service is not None:
        counted = _CountErrors(service)
        counted.addFilter(repeats)
        handlers.append(counted)
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    # FastStream logs every message received and processed (at DEBUG, see make_broker): one
    # line per Kafka message would drown the call's story.
    broker = logging.getLogger(BROKER_LOGGER)
    broker.setLevel(logging.WARNING)
    broker.addFilter(_TOPICS_ARE_PROVISIONED)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
