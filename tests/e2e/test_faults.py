"""Faults under a live call, on the whole stack, each call's record checked afterwards: the bus
cut and back, the bus cut for longer than a call can wait, Redis restarted, PostgreSQL out of
reach, the language model not answering.

The stack has fault points of its own: its broker (tansu, as the embedded default) advertises a
TCP proxy's address, so every service's connection to the bus goes through the proxy and
cutting it is a network partition; Redis is a redis-server this module restarts, keeping its
append-only file as a production Redis keeps its data; PostgreSQL is behind a proxy too; and
the agent's language model is a local fake that can hold its answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from voicebus_agent.llm import APOLOGY
from voicebus_devstack.caller import TwilioCaller
from voicebus_devstack.fake_openai import FakeOpenAI
from voicebus_devstack.harness import RunningStack, free_port
from voicebus_devstack.loop_thread import LoopThread
from voicebus_devstack.speech import telephone_speech
from voicebus_devstack.supervisor import broker_command, redis_server_binary, wait_for_port
from voicebus_devstack.tcp_proxy import TcpProxy
from voicebus_gateway.switchboard import UPLINK_S

from .conftest import record_of, replies_timed, running_stack, stopped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

FIRST_TURN = "Please book a table for two people tomorrow evening."
SECOND_TURN = "I would like to cancel my dentist appointment on Friday."
BUS_CUT_S = 5.0
"""A network blip: the caller speaks a whole turn while the bus is out of reach."""
DATABASE_CUT_S = 12.0
"""PostgreSQL out of reach for the whole of a call, and a while after it."""
MODEL_TIMEOUT_S = 1.0
WAIT_S = 90.0
"""Guards against a hung test only, as every wait here: nothing asserts how fast."""
PROCESS_WAIT_S = 30.0


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        running = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield running
    finally:
        running.terminate()
        running.wait(PROCESS_WAIT_S)


class RedisServer:
    """A real redis-server on `port` that keeps its data in an append-only file, as a
    production Redis does, so it can be restarted under the stack."""

    def __init__(self, directory: Path, port: int) -> None:
        self.url = f"redis://127.0.0.1:{port}/0"
        self._argv = [
            redis_server_binary(),
            *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)),
            *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
        ]
        self._log = directory / "redis.log"
        self._server: subprocess.Popen[bytes] | None = None
        self._port = port

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._server = subprocess.Popen(self._argv, stdout=out, stderr=subprocess.STDOUT)
        listening(self._port, "Redis")

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()  # as a restart does: it writes what it holds, and exits
            self._server.wait(PROCESS_WAIT_S)
            self._server = None


def listening(port: int, what: str) -> None:
    """Return once something listens on `port` (the supervisor's wait, from synchronous code)."""
    asyncio.run(wait_for_port("127.0.0.1", port, timeout_s=PROCESS_WAIT_S, what=what))


@dataclass
class FaultPoints:
    stack: RunningStack
    loop: LoopThread
    """Where the proxies and the model run: their methods are called through `loop.run`."""
    bus: TcpProxy
    database: TcpProxy
    redis: RedisServer
    model: FakeOpenAI

    def cut(self, proxy: TcpProxy) -> None:
        self.loop.run(proxy.cut())

    def restore(self, proxy: TcpProxy) -> None:
        async def restore() -> None:
            proxy.restore()

        self.loop.run(restore())

    def hold_answers(self) -> None:
        async def hold() -> None:
            self.model.gate = asyncio.Event()

        self.loop.run(hold())

    def release_answers(self) -> None:
        async def release() -> None:
            if self.model.gate is not None:
                self.model.gate.set()
            self.model.gate = None

        self.loop.run(release())


@pytest.fixture(scope="module")
def faults(
    tmp_path_factory: pytest.TempPathFactory,
    new_postgres_database: Callable[[], contextlib.AbstractContextManager[str]],
) -> Iterator[FaultPoints]:
    workdir = tmp_path_factory.mktemp("faults")
    kafka_port = free_port()
    redis = RedisServer(workdir, free_port())
    with (
        new_postgres_database() as database_url,
        LoopThread("fault-points") as loop,
        loop.entered(TcpProxy("127.0.0.1", kafka_port)) as bus,
        loop.entered(TcpProxy(*postgres_address(database_url))) as database,
        loop.entered(FakeOpenAI()) as model,
        process(broker_command(kafka_port, advertised_port=bus.port), workdir / "broker.log"),
    ):
        listening(kafka_port, "the Kafka broker")
        redis.start()
        env = {
            "VOICEBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{bus.port}",
            "VOICEBUS_REDIS_URL": redis.url,
            "VOICEBUS_DATABASE_URL": str(
                make_url(database_url).set(host="127.0.0.1", port=database.port)
            ),
            "VOICEBUS_AGENT_LLM_MODEL": "fault-model",
            "VOICEBUS_AGENT_LLM_BASE_URL": model.base_url,
            "VOICEBUS_AGENT_LLM_API_KEY": model.api_key,
            "VOICEBUS_AGENT_LLM_TIMEOUT_S": str(MODEL_TIMEOUT_S),
            "VOICEBUS_AGENT_LLM_RETRIES": "1",
        }
        try:
            stack = running_stack(workdir, env)
            yield FaultPoints(stack, loop, bus, database, redis, model)
            stopped(stack)
        finally:
            redis.stop()


def postgres_address(database_url: str) -> tuple[str, int]:
    url = make_url(database_url)
    return url.host or "127.0.0.1", url.port or 5432


async def say_and_hear(caller: TwilioCaller, sentence: str) -> bytes:
    finished = await caller.say(telephone_speech(sentence))
    return await caller.wait_for_agent_audio(after=finished, quiet_s=1.5, timeout_s=WAIT_S)


def whole(turns: int) -> Callable[[dict[str, Any]], bool]:
    """A record of an ended call with `turns` caller turns, each answered with its latency."""

    def done(record: dict[str, Any]) -> bool:
        return record["status"] == "completed" and replies_timed(record) == turns

    return done


def caller_and_agent_turns(record: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    turns = record["turns"]
    return [t for t in turns if t["role"] == "user"], [t for t in turns if t["role"] == "agent"]


def assert_each_turn_answered_once(record: dict[str, Any], turns: int) -> None:
    said, answers = caller_and_agent_turns(record)
    assert len(said) == turns, said
    assert len(answers) == turns + 1, answers  # the greeting, then one answer to each turn
    assert [t["in_reply_to"] for t in answers[1:]] == [t["turn_id"] for t in said]


async def test_the_bus_cut_under_a_call_and_back_loses_nothing(faults: FaultPoints) -> None:
    stack = faults.stack
    phone = await stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
        await say_and_hear(caller, FIRST_TURN)
        faults.cut(faults.bus)
        cut_at = time.monotonic()
        finished = await caller.say(telephone_speech(SECOND_TURN))  # the bus out of reach
        await asyncio.sleep(BUS_CUT_S - (time.monotonic() - cut_at))
        faults.restore(faults.bus)
        # Every service reconnects; the audio the gateway held is heard and answered.
        await caller.wait_for_agent_audio(after=finished, quiet_s=1.5, timeout_s=WAIT_S)

    record = await record_of(stack.base_url, phone.call_sid, whole(2))
    assert_each_turn_answered_once(record, 2)
    assert stack.process.poll() is None, stack.log_tail()


async def test_a_bus_cut_longer_than_a_call_can_wait_ends_it_with_an_apology(
    faults: FaultPoints,
) -> None:
    stack = faults.stack
    phone = await stack.phone_call()
    try:
        async with phone as caller:
            await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
            faults.cut(faults.bus)
            cut_at = time.time()
            # The caller's microphone keeps streaming; the gateway holds UPLINK_S of it.
            await caller.wait_closed(timeout_s=UPLINK_S + WAIT_S)
            apology = caller.heard.since(cut_at)
    finally:
        faults.restore(faults.bus)

    assert len(apology) > 8000, "the caller heard no apology before the hang-up"  # over 1 s
    record = await record_of(stack.base_url, phone.call_sid, lambda r: r["status"] == "completed")
    assert record["end_reason"] == "bus unreachable", record
    # The stack is whole again: the next call is answered.
    next_phone = await stack.phone_call()
    async with next_phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
        await say_and_hear(caller, FIRST_TURN)
    await record_of(stack.base_url, next_phone.call_sid, whole(1))


async def test_redis_restarted_under_a_call_loses_nothing(faults: FaultPoints) -> None:
    stack = faults.stack
    phone = await stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
        await say_and_hear(caller, FIRST_TURN)
        await asyncio.to_thread(faults.redis.stop)
        await asyncio.to_thread(faults.redis.start)
        await say_and_hear(caller, SECOND_TURN)

    record = await record_of(stack.base_url, phone.call_sid, whole(2))
    assert_each_turn_answered_once(record, 2)
    # The model heard the first turn and its answer with the second: the history came through.
    second = faults.model.requests[-1]["messages"]
    assert [m["role"] for m in second if m["role"] != "system"] == [
        "assistant",
        "user",
        "assistant",
        "user",
    ]


async def test_postgresql_out_of_reach_under_a_call_then_back_loses_nothing(
    faults: FaultPoints,
) -> None:
    stack = faults.stack
    faults.cut(faults.database)
    cut_at = time.monotonic()
    try:
        phone = await stack.phone_call()
        async with phone as caller:
            await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
            await say_and_hear(caller, FIRST_TURN)
            await say_and_hear(caller, SECOND_TURN)
        await asyncio.sleep(DATABASE_CUT_S - (time.monotonic() - cut_at))
    finally:
        faults.restore(faults.database)

    # Analytics held its place on the bus and records the call once the database is back.
    record = await record_of(stack.base_url, phone.call_sid, whole(2))
    assert_each_turn_answered_once(record, 2)


async def test_a_model_that_does_not_answer_is_apologized_for_and_the_call_goes_on(
    faults: FaultPoints,
) -> None:
    stack = faults.stack
    phone = await stack.phone_call()
    async with phone as caller:
        await caller.wait_for_agent_audio(after=0.0, quiet_s=1.5, timeout_s=WAIT_S)
        faults.hold_answers()
        try:
            await say_and_hear(caller, FIRST_TURN)  # the apology, once the model timed out
        finally:
            faults.release_answers()
        await say_and_hear(caller, SECOND_TURN)

    record = await record_of(stack.base_url, phone.call_sid, whole(2))
    assert_each_turn_answered_once(record, 2)
    _, answers = caller_and_agent_turns(record)
    assert answers[1]["text"] == APOLOGY
    assert answers[2]["text"].startswith("You said:"), answers[2]
