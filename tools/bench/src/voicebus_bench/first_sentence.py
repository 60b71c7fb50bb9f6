"""Time to the first sentence of a reply with the local fake LLM, and what we add to the model's.

The fake streams its answer at a model's pace (`PIECE_DELAY_S` before each piece of
`PIECE_CHARS` characters, about a token); the first sentence is out once the piece holding the
space after its period has arrived. Whatever a measure takes beyond that pacing is ours: the
openai SDK, HTTP, sentence cutting, and across the bus the hop to the agent and its turn handling.
Measured in one process (the LLM responder alone, with and without a tool call first) and over
the running stack's Kafka (a final transcript published to the first reply sentence published).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
from faststream.kafka import KafkaBroker
from openai import AsyncOpenAI

from voicebus_agent.llm import FixedScript, LlmResponder, LlmSettings
from voicebus_agent.ports import Message, ToolCall
from voicebus_bench.stats import median, percentiles
from voicebus_contracts import (
    TELEPHONE,
    CallEnded,
    CallStarted,
    Envelope,
    Event,
    FinalTranscript,
    ReplyEvent,
    ReplyTextChunk,
    StageStamps,
    envelope,
)
from voicebus_contracts.agents import SECRET_ENV_PREFIX
from voicebus_contracts.topics import CALLS, REPLIES, TRANSCRIPTS, Topic
from voicebus_devstack.fake_openai import PIECE_CHARS, FakeOpenAI
from voicebus_devstack.harness import RunningStack
from voicebus_devstack.settings import EMBEDDED_BROKER_FETCH_MAX_WAIT_MS
from voicebus_runtime.bus import consumer_options, make_broker, publish

CALLER_WORDS = "Do you have a table for two at seven tonight?"
FIRST_SENTENCE = "Yes, a table for two at seven is free."
ANSWER = f"{FIRST_SENTENCE} Shall I book it?"
PIECE_DELAY_S = 0.02
"""A hosted model's pace once it writes: 50 tokens a second. The first piece comes as late as
the next ones: no time to first token of its own."""
TOOL = "check_availability"
MODEL = "bench-model"

FAKE_LLM_SECRET = "BENCH_FAKE_LLM"
FAKE_LLM_KEY = "sk-bench"
STACK_ENV = {f"{SECRET_ENV_PREFIX}{FAKE_LLM_SECRET}": FAKE_LLM_KEY}
"""What the stack's agent service needs to reach the fake LLM as a configured agent's model."""
AGENT_ID = "bench-fake-llm"
AGENT_READY_TIMEOUT_S = 30.0
REPLY_TIMEOUT_S = 10.0


def pieces_to_first_sentence() -> int:
    """The pieces the fake streams until the first sentence can be cut: its period and the
    whitespace after it."""
    return math.ceil((len(FIRST_SENTENCE) + 1) / PIECE_CHARS)


async def fake_pacing_ms(*, repeats: int = 5) -> float:
    """The fake's pacing up to the first sentence as this event loop sleeps it (timers wake a
    little late): the part of every measure that is the model's, not ours."""
    slept = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(pieces_to_first_sentence()):
            await asyncio.sleep(PIECE_DELAY_S)
        slept.append((time.perf_counter() - started) * 1000.0)
    paced = median(slept)
    assert paced is not None
    return paced


class _InstantTool:
    """One tool that answers at once: a reply's wait after a tool call is the model's and ours."""

    def definitions(self) -> list[dict[str, Any]]:
        schema = {"type": "object", "properties": {"people": {"type": "integer"}}}
        return [{"type": "function", "function": {"name": TOOL, "parameters": schema}}]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        return json.dumps({"free": True})


@dataclass(frozen=True)
class InProcessTimes:
    """Milliseconds from `LlmResponder.respond` to its first sentence, one per turn."""

    text_ms: list[float]
    """The model answers with text at once."""
    after_tool_call_ms: list[float]
    """The model first calls a tool (streamed unpaced), then answers with text."""


async def in_process(*, turns: int) -> InProcessTimes:
    """The LLM responder against the fake, `turns` times each way, after one turn each unmeasured
    (the connection, the SDK's first use)."""
    history = [Message(id="t1", role="user", text=CALLER_WORDS)]
    async with FakeOpenAI() as fake:
        client = AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0)
        llm = LlmResponder(
            client=client,
            settings=LlmSettings(model=MODEL),
            script=FixedScript("Be brief.", _InstantTool()),
        )

        async def first_sentence_ms(*, tool_call_first: bool) -> float:
            if tool_call_first:
                fake.answer(tool_calls=[(TOOL, {"people": 2})])
            fake.answer(ANSWER, piece_delay_s=PIECE_DELAY_S)
            started = time.perf_counter()
            # An async generator: closed, it stops the stream (the rest is not waited for).
            sentences = cast(
                AsyncGenerator[str, None],
                llm.respond(history, call_id="bench", reply_id="bench:t1:reply"),
            )
            async with aclosing(sentences):
                first = await anext(sentences)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            if first != FIRST_SENTENCE:
                raise RuntimeError(f"the responder's first sentence was {first!r}")
            return elapsed_ms

        try:
            await first_sentence_ms(tool_call_first=False)
            await first_sentence_ms(tool_call_first=True)
            return InProcessTimes(
                text_ms=[await first_sentence_ms(tool_call_first=False) for _ in range(turns)],
                after_tool_call_ms=[
                    await first_sentence_ms(tool_call_first=True) for _ in range(turns)
                ],
            )
        finally:
            await client.close()


async def over_the_bus(stack: RunningStack, *, turns: int) -> list[float]:
    """Milliseconds from a final transcript published to the agent's first reply sentence
    published (its `transcribed` and `reply_first_text` stamps), `turns` turns of one call to an
    agent whose model is the fake. The stack's agent service needs `STACK_ENV`."""
    async with FakeOpenAI(api_key=FAKE_LLM_KEY) as fake, _calling(stack.kafka_bootstrap) as call:
        await _create_agent(stack.base_url, fake.base_url)
        await call.start()
        # The agent service learns the agent from the bus: until then the call's turns get the
        # default agent's answer. The first that reaches the fake also warms its client up.
        deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
        while not fake.requests:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent service never asked the fake LLM")
            await call.turn()
        first_text_ms = []
        for _ in range(turns):
            fake.answer(ANSWER, piece_delay_s=PIECE_DELAY_S)
            first = await call.turn()
            if first.text != FIRST_SENTENCE:
                raise RuntimeError(f"the agent's first sentence was {first.text!r}")
            first_text_ms.append(first.after_transcript_ms())
        await call.end()
    return first_text_ms


async def _create_agent(gateway_url: str, model_url: str) -> None:
    agent = {
        "agent_id": AGENT_ID,
        "name": "Bench agent on the fake LLM",
        "llm": {"model": MODEL, "base_url": model_url, "api_key_secret": FAKE_LLM_SECRET},
    }
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as api:
        response = await api.post("/api/agents", json=agent)
        response.raise_for_status()


@dataclass(frozen=True)
class _FirstChunk:
    text: str
    stamps: StageStamps

    def after_transcript_ms(self) -> float:
        """From the final transcript published to this chunk published."""
        transcribed, replied = self.stamps.transcribed, self.stamps.reply_first_text
        if transcribed is None or replied is None:
            raise RuntimeError("the reply lacks its transcribed or reply_first_text stamp")
        return (replied - transcribed) * 1000.0


class _Call:
    """One call to the agent service, driven on the bus as the gateway and STT would."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker
        self._call_id = f"bench-first-sentence-{uuid.uuid4().hex[:8]}"
        self._turns = 0
        self._first: dict[str, _FirstChunk] = {}
        self._answered: dict[str, asyncio.Event] = {}

    def heard(self, env: Envelope[ReplyEvent]) -> None:
        chunk = env.event
        if env.call_id != self._call_id or not isinstance(chunk, ReplyTextChunk):
            return
        answered = self._answered.get(chunk.in_reply_to or "")
        if answered is None:
            return  # the greeting
        if chunk.seq == 0:
            self._first[chunk.in_reply_to or ""] = _FirstChunk(chunk.text, env.stamps)
        if chunk.last:
            answered.set()

    async def start(self) -> None:
        started = CallStarted(
            transport="twilio",
            agent_id=AGENT_ID,
            gateway_id="bench",
            audio_in=TELEPHONE,
            audio_out=TELEPHONE,
        )
        await self._publish(CALLS, started)

    async def turn(self) -> _FirstChunk:
        """Say `CALLER_WORDS` as a final transcript; the reply's first chunk, once all of the
        reply is out (the agent answers one turn at a time)."""
        self._turns += 1
        turn_id = f"{self._call_id}:t{self._turns}"
        answered = self._answered[turn_id] = asyncio.Event()
        heard = FinalTranscript(turn_id=turn_id, text=CALLER_WORDS, duration_ms=2000)
        await self._publish(TRANSCRIPTS, heard, StageStamps(transcribed=time.time()))
        await asyncio.wait_for(answered.wait(), timeout=REPLY_TIMEOUT_S)
        return self._first[turn_id]

    async def end(self) -> None:
        await self._publish(CALLS, CallEnded(reason="bench over"))

    async def _publish(self, topic: Topic, event: Event, stamps: StageStamps | None = None) -> None:
        env = envelope(event, call_id=self._call_id, producer="bench", stamps=stamps)
        await publish(self._broker, topic, env)


@asynccontextmanager
async def _calling(bootstrap: str) -> AsyncIterator[_Call]:
    broker = make_broker(bootstrap, client_id="voicebus-bench-first-sentence")
    call = _Call(broker)

    @broker.subscriber(
        REPLIES.name,
        **consumer_options(None, fetch_max_wait_ms=EMBEDDED_BROKER_FETCH_MAX_WAIT_MS),
    )
    async def on_reply(env: Envelope[ReplyEvent]) -> None:
        call.heard(env)

    async with broker:
        await broker.start()
        yield call


def summary(*, paced_ms: float, inprocess: InProcessTimes, over_bus: list[float]) -> dict[str, Any]:
    """The section of the results: each measure, and the same less the fake's pacing (ours)."""

    def with_overhead(name: str, samples: list[float]) -> dict[str, Any]:
        return {
            f"{name}_ms": percentiles(samples, "p50", "p95"),
            f"{name}_overhead_ms": percentiles([ms - paced_ms for ms in samples], "p50", "p95"),
        }

    return {
        "pacing": {
            "piece_chars": PIECE_CHARS,
            "piece_delay_ms": PIECE_DELAY_S * 1000.0,
            "pieces": pieces_to_first_sentence(),
            "paced_ms": round(paced_ms, 1),
        },
        "turns": len(inprocess.text_ms),
        **with_overhead("in_process", inprocess.text_ms),
        **with_overhead("after_tool_call", inprocess.after_tool_call_ms),
        **with_overhead("over_bus", over_bus),
    }
