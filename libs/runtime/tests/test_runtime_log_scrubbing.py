"""Log lines scrubbed as configure_logging writes them, whoever logs and in either format:
secrets always masked (the environment's, and what looks like one), callers' personal data
redacted when the service redacts it."""

from __future__ import annotations

import json
import logging

import pytest

from voicebus_runtime.logs import configure_logging
from voicebus_runtime.redaction import CARD, EMAIL, PHONE, SECRET

pytestmark = pytest.mark.usefixtures("restored_logging")

log = logging.getLogger("voicebus_test.scrubbing")

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET = "whsec-4f1c2a9b"
OPENAI_KEY = "sk-proj-Ab12Cd34Ef56Gh78Ij90"
DATABASE_PASSWORD = "hunter2-but-longer"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
SECRETS = (TWILIO_TOKEN, WEBHOOK_SECRET, OPENAI_KEY, DATABASE_PASSWORD, BEARER)
SAID = "my email is jane@example.com, card 4111 1111 1111 1111, call me on (415) 555-0134"
PERSONAL = ("jane@example.com", "4111", "555-0134")


@pytest.fixture(autouse=True)
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("VOICEBUS_SECRET_HOOK_KEY", WEBHOOK_SECRET)
    monkeypatch.setenv("VOICEBUS_GREETING_TOKEN", "hello")  # too short to be masked


def log_secrets() -> None:
    """What services and libraries may log: settings, requests, a failure's message."""
    log.info("Twilio token %s", TWILIO_TOKEN)
    log.info("signing with %r", {"secret": WEBHOOK_SECRET})
    log.info("calling the model with key %s", OPENAI_KEY)
    log.warning(
        "request headers: %s",
        {"Authorization": f"Bearer {BEARER}", "Content-Type": "application/json"},
    )
    try:
        raise ConnectionError(f"cannot reach postgresql://voicebus:{DATABASE_PASSWORD}@db/voicebus")
    except ConnectionError:
        log.exception("the database cannot be reached")
    log.info("say %s", "hello")


def test_secrets_are_masked_in_text_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")

    log_secrets()

    out = capsys.readouterr().err
    assert not [secret for secret in SECRETS if secret in out]
    assert f"Twilio token {SECRET}" in out
    assert f"{{'secret': '{SECRET}'}}" in out
    assert f"{{'Authorization': '{SECRET}', 'Content-Type': 'application/json'}}" in out
    assert f"ConnectionError: cannot reach postgresql://voicebus:{SECRET}@db/voicebus" in out
    assert "say hello" in out


def test_secrets_are_masked_in_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True, service="analytics")

    log_secrets()

    out = capsys.readouterr().err
    assert not [secret for secret in SECRETS if secret in out]
    lines = [json.loads(line) for line in out.splitlines()]
    failed = next(line for line in lines if line["message"] == "the database cannot be reached")
    assert f"postgresql://voicebus:{SECRET}@db/voicebus" in failed["exception"]


def test_what_callers_said_is_logged_as_it_is_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")

    log.info("call CA1: heard %r", SAID)

    assert SAID in capsys.readouterr().err


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_with_redaction_what_callers_said_is_logged_redacted(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", json=json_lines, service="stt", redact_pii=True)

    log.info("call CA1: heard %r", SAID)
    log.debug(SAID)
    try:
        raise ValueError(f"the tool refused {SAID}")
    except ValueError:
        log.exception("call CA1: tool failed")
    log.info("still masked: %s", TWILIO_TOKEN)

    out = capsys.readouterr().err
    assert not [found for found in (*PERSONAL, TWILIO_TOKEN) if found in out]
    redacted = f"my email is {EMAIL}, card {CARD}, call me on {PHONE}"
    assert f"call CA1: heard '{redacted}'" in out
    assert f"ValueError: the tool refused {redacted}" in out
    assert f"still masked: {SECRET}" in out
