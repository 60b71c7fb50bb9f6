"""Logs: text by default, JSON lines on demand with the service and the call a record is about
(from the message a handler handles over a real Kafka-protocol broker, or from the code's own
call context), never a message's body; logged errors are counted."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import datetime

import pytest

from voicebus_contracts import CallEnded, CallEvent, Envelope, envelope
from voicebus_contracts.topics import Topic
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker, publish
from voicebus_runtime.logs import call_context, configure_logging
from voicebus_runtime.metrics import REGISTRY

log = logging.getLogger("voicebus_test.logs")


pytestmark = pytest.mark.usefixtures("restored_logging")


def test_text_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    with call_context("CA-text"):
        log.info("a call event handled")
    line = capsys.readouterr().err.strip()
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO  voicebus_test.logs: a call event handled"
    assert re.fullmatch(pattern, line)


async def test_a_record_logged_while_handling_a_message_carries_its_call_in_json(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = Topic(f"test.{uuid.uuid4().hex}", 2, "test calls")
    await ensure_topics(kafka_bootstrap, [topic])
    configure_logging("DEBUG", json=True, service="media")
    broker = make_broker(kafka_bootstrap, client_id="logs")
    heard = asyncio.Event()

    @broker.subscriber(topic.name, **consumer_options(f"logs-{uuid.uuid4().hex[:8]}"))
    async def on_call(env: Envelope[CallEvent]) -> None:
        log.info("a call event handled")
        heard.set()

    async with broker:
        await broker.start()
        said = CallEnded(reason="the caller said their PIN is 4321")
        await publish(broker, topic, envelope(said, call_id="CA-json", producer="t"))
        await asyncio.wait_for(heard.wait(), 30)
    log.info("between calls")
    with call_context("CA-socket"):
        log.warning("from a call's web socket")

    out = capsys.readouterr().err
    lines = [json.loads(line) for line in out.splitlines() if line]  # every line is JSON
    handled = next(line for line in lines if line["message"] == "a call event handled")
    assert handled["call_id"] == "CA-json"
    assert handled["service"] == "media"
    assert handled["level"] == "INFO"
    assert handled["logger"] == "voicebus_test.logs"
    assert datetime.fromisoformat(handled["time"]).utcoffset() is not None
    between = next(line for line in lines if line["message"] == "between calls")
    assert "call_id" not in between
    socket = next(line for line in lines if line["message"] == "from a call's web socket")
    assert socket["call_id"] == "CA-socket"
    assert "4321" not in out  # not even at DEBUG does a body reach the logs


def test_logged_errors_are_counted_by_service_and_kind() -> None:
    configure_logging("INFO", service="stt")
    labels = {"service": "stt", "kind": "voicebus_test.logs"}
    before = REGISTRY.get_sample_value("voicebus_errors_total", labels) or 0
    log.warning("not an error")
    log.error("a turn was not transcribed")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("a turn was not transcribed")
    assert REGISTRY.get_sample_value("voicebus_errors_total", labels) == before + 2


def test_the_kafka_clients_repeated_lines_are_logged_once_per_window(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("INFO", service="gateway")
    kafka = logging.getLogger("aiokafka.conn")
    labels = {"service": "gateway", "kind": "aiokafka.conn"}
    before = REGISTRY.get_sample_value("voicebus_errors_total", labels) or 0
    now = [1000.0]
    monkeypatch.setattr(logging.time, "time", lambda: now[0])  # type: ignore[attr-defined]
    for _ in range(50):  # five seconds of a lost broker, retried every 100 ms
        kafka.error("Unable connect to node with id %s", 111)
        log.error("a line of ours, each time")
        now[0] += 0.1
    kafka.error("Unable to update metadata from [%s]", 111)  # another line: through at once
    now[0] += 10.0
    kafka.error("Unable connect to node with id %s", 111)  # the window is over

    lines = capsys.readouterr().err.splitlines()
    from_kafka = [line for line in lines if "aiokafka" in line]
    assert [line.split(": ", 1)[1] for line in from_kafka] == [
        "Unable connect to node with id 111",
        "Unable to update metadata from [111]",
        "Unable connect to node with id 111 (49 more like it since it was last logged)",
    ]
    assert sum("a line of ours" in line for line in lines) == 50
    assert REGISTRY.get_sample_value("voicebus_errors_total", labels) == before + 3
