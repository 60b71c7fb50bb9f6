"""Realtime calls in the agent worker: a local server speaking the OpenAI Realtime protocol
drives the real client (the openai SDK); the bus is FastStream's test broker, the history real
Redis. The model greets and answers in its own voice, straight to the call's gateway; a barge-in
truncates the model's item to what the caller heard; a tool call round-trips; a worker that
takes a call over opens a session primed with the conversation so far."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from voicebus_agent.ports import Message
from voicebus_agent.realtime.calls import UNAVAILABLE
from voicebus_agent.realtime.session import ModelAudio, OpenAIRealtime, ResponseDone, SessionSetup
from voicebus_agent.settings import AgentSettings
from voicebus_contracts import (
    SPEECH_16K,
    TELEPHONE,
    CallRoute,
    CallStarted,
    CancelReply,
    HangUp,
    InboundAudioFrame,
    OutboundAudioChunk,
    PausePlayback,
    ReplyPaused,
    TransferCall,
    envelope,
)
from voicebus_contracts.agents import AgentConfigured, AgentSpec, RealtimeModel
from voicebus_contracts.topics import AGENTS, CALLS, PLAYBACK, REALTIME_AUDIO_IN
from voicebus_devstack.fake_openai_realtime import FakeOpenAIRealtime
from voicebus_devstack.polling import until
from voicebus_runtime.registry import CallRegistry

from .test_agent_app import GATEWAY, Agent, running, send

WAIT_S = 10.0
"""Guards against a hung test only."""
SPEC = AgentSpec(
    agent_id="concierge",
    name="Concierge",
    greeting="Harbor Light, how can I help?",
    system_prompt="You rent boats.",
    pipeline="realtime",
    realtime=RealtimeModel(voice="marin"),
)


@dataclass
class RealtimeAgent:
    agent: Agent
    fake: FakeOpenAIRealtime

    def audio(self, reply_id: str) -> list[OutboundAudioChunk]:
        return [
            env.event
            for env in self.agent.commands
            if isinstance(env.event, OutboundAudioChunk) and env.event.reply_id == reply_id
        ]

    def commands(self, kind: type[Any]) -> list[Any]:
        return [env.event for env in self.agent.commands if isinstance(env.event, kind)]


@asynccontextmanager
async def realtime_agent(redis_url: str, redis: Redis) -> AsyncIterator[RealtimeAgent]:
    async with FakeOpenAIRealtime(chunk_ms=100) as fake:
        settings = AgentSettings(realtime_base_url=fake.base_url, realtime_api_key=fake.api_key)
        async with running(redis_url, redis, settings) as agent:
            realtime = RealtimeAgent(agent, fake)
            announced = envelope(
                AgentConfigured(agent=SPEC), call_id=SPEC.agent_id, producer="agent"
            )
            await send(agent, AGENTS.name, announced)
            yield realtime


@pytest.fixture
async def realtime_call(redis: Redis) -> AsyncIterator[str]:
    """A realtime call live on gateway GATEWAY; its keys are removed afterwards."""
    call_id = f"CA{uuid.uuid4().hex}"
    registry = CallRegistry(redis)
    route = CallRoute(
        call_id=call_id,
        gateway_id=GATEWAY,
        transport="twilio",
        agent_id=SPEC.agent_id,
        audio_out=TELEPHONE,
    )
    await registry.register(route)
    yield call_id
    await registry.forget(call_id, gateway_id=GATEWAY)
    keys = [key async for key in redis.scan_iter(match=f"voicebus:call:{call_id}:*")]
    if keys:
        await redis.delete(*keys)


async def start(realtime: RealtimeAgent, call_id: str) -> None:
    started = CallStarted(
        transport="twilio",
        agent_id=SPEC.agent_id,
        gateway_id=GATEWAY,
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
        pipeline="realtime",
    )
    await send(realtime.agent, CALLS.name, envelope(started, call_id=call_id, producer="gateway"))


async def greeted(realtime: RealtimeAgent, call_id: str) -> str:
    """The greeting's reply id, once its audio reached the gateway whole."""
    greeting = f"{call_id}:greeting"
    await until(lambda: any(c.last for c in realtime.audio(greeting)), what="the greeting")
    return greeting


async def speak(realtime: RealtimeAgent, call_id: str, audio: bytes, *, seq: int = 0) -> None:
    frame = InboundAudioFrame(seq=seq, audio=audio, format=TELEPHONE, received_at=1000.0 + seq)
    await send(
        realtime.agent, REALTIME_AUDIO_IN.name, envelope(frame, call_id=call_id, producer="gateway")
    )


async def test_the_model_greets_and_answers_in_its_own_voice_on_the_calls_bus(
    redis_url: str, redis: Redis, realtime_call: str
) -> None:
    call_id = realtime_call
    async with realtime_agent(redis_url, redis) as realtime:
        realtime.fake.answer("Harbor Light, how can I help?")
        await start(realtime, call_id)
        session = await realtime.fake.session(0)
        greeting = await greeted(realtime, call_id)

        caller_audio = bytes(range(256)) * 2
        await speak(realtime, call_id, caller_audio)
        await until(lambda: bytes(session.audio_received) == caller_audio, what="the audio")
        realtime.fake.answer("Sure, for how many people?")
        item_id = await session.caller_speaks("Book a boat for tomorrow.")
        turn_id = f"{call_id}:{item_id}"
        reply_id = f"{turn_id}:reply"
        await until(lambda: any(c.last for c in realtime.audio(reply_id)), what="the answer")
        await until(
            lambda: any(
                r.event.last and r.event.reply_id == reply_id for r in realtime.agent.replies
            ),
            what="the reply's end",
        )
        history = await realtime.agent.store.history(call_id)

    config = session.config
    assert config["audio"]["input"]["format"] == {"type": "audio/pcmu"}  # no transcoding
    assert config["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert config["audio"]["output"]["voice"] == "marin"
    assert config["instructions"] == "You rent boats."
    assert {tool["name"] for tool in config["tools"]} >= {"end_call", "transfer_call"}
    assert "Harbor Light, how can I help?" in session.responses[0].request["instructions"]  # type: ignore[index]

    # What the model said, as voiced replies (TTS leaves them alone), answering the turn.
    said = [(r.event.reply_id, r.event.text, r.event.voiced) for r in realtime.agent.replies]
    assert (greeting, "Harbor Light, how can I help?", True) in said
    assert (reply_id, "Sure, for how many people?", True) in said
    answer = next(r for r in realtime.agent.replies if r.event.reply_id == reply_id)
    assert answer.event.in_reply_to == turn_id
    assert [t.event.text for t in realtime.agent.transcripts] == ["Book a boat for tomorrow."]
    assert realtime.agent.transcripts[0].event.turn_id == turn_id
    # Its audio went to the gateway as the model gave it (mu-law), with the turn's stamps.
    chunks = realtime.audio(reply_id)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert {c.format for c in chunks} == {TELEPHONE}
    assert sum(len(c.audio) for c in chunks) == session.responses[-1].audio_ms * 8
    first = next(env for env in realtime.agent.commands if env.event == chunks[0])
    stamps = first.stamps
    # The model's end of turn; no transcription on the way; its first audio is its first word.
    assert stamps.turn_ended == stamps.transcribed
    assert stamps.reply_first_text == stamps.tts_first_audio
    ended, turned, voiced = stamps.speech_ended, stamps.turn_ended, stamps.tts_first_audio
    assert ended is not None
    assert turned is not None
    assert voiced is not None
    assert ended <= turned <= voiced
    assert [(m.role, m.text) for m in history] == [
        ("agent", "Harbor Light, how can I help?"),
        ("user", "Book a boat for tomorrow."),
        ("agent", "Sure, for how many people?"),
    ]


async def test_a_barge_in_cuts_the_models_item_to_what_the_caller_heard(
    redis_url: str, redis: Redis, realtime_call: str
) -> None:
    call_id = realtime_call
    async with realtime_agent(redis_url, redis) as realtime:
        realtime.fake.chunk_delay_s = 0.05
        realtime.fake.answer("Welcome aboard. We have sailing boats, motor boats and kayaks.")
        await start(realtime, call_id)
        session = await realtime.fake.session(0)
        greeting = f"{call_id}:greeting"
        await until(lambda: len(realtime.audio(greeting)) >= 4, what="some of the greeting")
        await session.caller_starts_speaking()
        await until(lambda: realtime.commands(PausePlayback) != [], what="the pause")
        sent = len(realtime.audio(greeting))
        paused = ReplyPaused(
            reply_id=greeting,
            turn_id=realtime.commands(PausePlayback)[0].turn_id,
            sentence=0,
            fraction=2 / sent,  # the caller heard two chunks
        )
        await send(
            realtime.agent, PLAYBACK.name, envelope(paused, call_id=call_id, producer="gateway")
        )
        await until(lambda: session.truncations != [], what="the truncation")
        history = await realtime.agent.store.history(call_id)

    [truncation] = session.truncations
    assert truncation.item_id == session.responses[0].item_id
    assert truncation.audio_end_ms == 2 * 100  # two chunks of 100 ms heard
    assert realtime.commands(CancelReply) == [CancelReply(reply_id=greeting)]
    [cancelled] = realtime.agent.cancellations
    assert cancelled.event.reply_id == greeting
    # No more of the interrupted response reaches the gateway.
    assert all(c.seq < sent + 2 for c in realtime.audio(greeting))
    assert all(
        m.text != "Welcome aboard. We have sailing boats, motor boats and kayaks." for m in history
    )


async def test_a_tool_the_model_calls_runs_and_its_result_goes_back_to_the_model(
    redis_url: str, redis: Redis, realtime_call: str
) -> None:
    call_id = realtime_call
    async with realtime_agent(redis_url, redis) as realtime:
        realtime.fake.answer("Hello.")
        await start(realtime, call_id)
        session = await realtime.fake.session(0)
        await greeted(realtime, call_id)
        realtime.fake.call_tool("transfer_call", {"to": "+14155550100"})
        realtime.fake.answer("Transferring you now.")
        await session.caller_speaks("Put me through to sales.")
        await until(lambda: realtime.commands(TransferCall) != [], what="the transfer")
        await until(
            lambda: any(r.event.text == "Transferring you now." for r in realtime.agent.replies),
            what="the answer after the tool",
        )

    assert realtime.commands(TransferCall) == [TransferCall(to="+14155550100")]
    outputs = [item for item in session.items if item["type"] == "function_call_output"]
    assert len(outputs) == 1
    assert [tool.event.type for tool in realtime.agent.tools] == ["tool.called", "tool.returned"]


async def test_a_worker_taking_a_call_over_primes_a_new_session_with_the_conversation(
    redis_url: str, redis: Redis, realtime_call: str
) -> None:
    call_id = realtime_call
    async with realtime_agent(redis_url, redis) as realtime:
        store = realtime.agent.store
        await store.append(call_id, Message(id=f"{call_id}:greeting", role="agent", text="Hello."))
        await store.append(
            call_id, Message(id=f"{call_id}:t1", role="user", text="A kayak, please.")
        )
        # This worker never saw the call start: its audio is the first it hears of it.
        await speak(realtime, call_id, b"\xff" * 320)
        session = await realtime.fake.session(0)
        await until(lambda: len(session.audio_received) == 320, what="the audio")

    primed = [
        (item["role"], item["content"][0]["text"])
        for item in session.items
        if item["type"] == "message"
    ]
    assert primed == [("assistant", "Hello."), ("user", "A kayak, please.")]
    assert session.config["instructions"] == "You rent boats."


async def test_a_calls_first_audio_coming_before_its_start_opens_one_session_greeted_once(
    redis_url: str, redis: Redis, realtime_call: str
) -> None:
    call_id = realtime_call
    async with realtime_agent(redis_url, redis) as realtime:
        realtime.fake.answer(SPEC.greeting or "")
        await speak(realtime, call_id, b"\xff" * 320)  # its own topic: it may overtake the start
        await start(realtime, call_id)
        await greeted(realtime, call_id)
        await start(realtime, call_id)  # delivered again
        session = await realtime.fake.session(0)

    assert len(realtime.fake.sessions) == 1
    assert len(session.responses) == 1


async def test_without_a_key_for_openai_the_caller_is_told_and_hung_up_on(
    redis_url: str, redis: Redis, realtime_call: str, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = realtime_call
    settings = AgentSettings(realtime_api_key=None)  # OpenAI's endpoint, and no key
    async with running(redis_url, redis, settings) as agent:
        announced = envelope(AgentConfigured(agent=SPEC), call_id=SPEC.agent_id, producer="agent")
        await send(agent, AGENTS.name, announced)
        await start(RealtimeAgent(agent, FakeOpenAIRealtime()), call_id)

    assert "VOICEBUS_AGENT_REALTIME_API_KEY" in caplog.text
    assert [(r.event.text, r.event.voiced) for r in agent.replies] == [
        (UNAVAILABLE, False),
        ("", False),
    ]
    [hang_up] = [env.event for env in agent.commands if isinstance(env.event, HangUp)]
    assert hang_up.after_reply == f"{call_id}:unavailable"


async def test_a_web_calls_audio_is_resampled_to_and_from_the_models_24_khz() -> None:
    async with FakeOpenAIRealtime(chunk_ms=100) as fake:
        connector = OpenAIRealtime(base_url=fake.base_url, api_key=fake.api_key)
        setup = SessionSetup(
            model=RealtimeModel(), instructions="Be brief.", tools=(), history=(), audio=SPEECH_16K
        )
        session = await connector.open(setup)
        heard = await fake.session(0)
        second = np.full(16_000, 1000, dtype=np.int16).tobytes()  # a second at 16 kHz
        for start in range(0, len(second), 640):
            await session.hear(second[start : start + 640])
        await until(lambda: len(heard.audio_received) >= 2 * 23_000, what="the audio")
        fake.answer("Hello there.")
        await heard.caller_speaks("Hi.")
        voice = bytearray()
        async for event in session.events():
            if isinstance(event, ModelAudio):
                voice += event.audio
            if isinstance(event, ResponseDone):
                break
        await session.close()
        await connector.aclose()

    assert heard.config["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24_000}
    # A second of 16 kHz audio reached the model as a second at 24 kHz (but for the few ms the
    # streaming resampler holds back)...
    assert len(heard.audio_received) == pytest.approx(2 * 24_000, rel=0.03)
    # ...and the model's 24 kHz voice came back at 16 kHz.
    spoken_ms = heard.responses[0].audio_ms
    assert len(voice) == pytest.approx(2 * 16 * spoken_ms, rel=0.03)
