import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from voicebus_agent.app import build
from voicebus_agent.history import RedisConversationStore
from voicebus_agent.knowledge.embeddings import E5Embedder
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.llm import KNOWLEDGE_HEADER
from voicebus_agent.settings import AgentSettings
from voicebus_contracts import (
    TELEPHONE,
    AnsweredBy,
    CallAnsweredBy,
    CallRoute,
    CallStarted,
    CancelReply,
    Direction,
    DtmfReceived,
    Envelope,
    FinalTranscript,
    GatewayEvent,
    HangUp,
    ReplyCancelled,
    ReplyEvent,
    ReplyPaused,
    ReplyTextChunk,
    ResumePlayback,
    SpeechStarted,
    SpeechStopped,
    StageStamps,
    ToolCalled,
    ToolEvent,
    ToolReturned,
    TransferCall,
    derived_id,
    envelope,
)
from voicebus_contracts.agents import (
    AgentConfigured,
    AgentSpec,
    HttpTool,
    KnowledgeBaseUse,
    LanguageModel,
    Voicemail,
)
from voicebus_contracts.topics import (
    AGENTS,
    CALLS,
    PLAYBACK,
    REPLIES,
    SPEECH,
    TOOLS,
    TRANSCRIPTS,
    gateway_topic,
)
from voicebus_devstack.asgi import serve_asgi
from voicebus_devstack.fake_openai import FakeOpenAI
from voicebus_runtime.bus import headers_of
from voicebus_runtime.lanes import CallLanes
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

GATEWAY = "gw-agent-test"


@dataclass
class Agent:
    """The agent on a test broker, and what it published: replies, cancellations, commands."""

    broker: KafkaBroker
    lanes: CallLanes
    store: RedisConversationStore
    replies: list[Envelope[ReplyTextChunk]] = field(default_factory=list)
    cancellations: list[Envelope[ReplyCancelled]] = field(default_factory=list)
    commands: list[Envelope[GatewayEvent]] = field(default_factory=list)
    tools: list[Envelope[ToolEvent]] = field(default_factory=list)
    transcripts: list[Envelope[FinalTranscript]] = field(default_factory=list)
    """Those the agent published itself (a realtime call's)."""
    replied: asyncio.Event = field(default_factory=asyncio.Event)

    def said(self) -> list[str]:
        return [r.event.text for r in self.replies]


@pytest.fixture
async def call_id(redis: Redis) -> AsyncIterator[str]:
    """A call live on gateway GATEWAY; its keys are removed afterwards."""
    call_id = f"CA{uuid.uuid4().hex}"
    registry = CallRegistry(redis)
    await registry.register(
        CallRoute(
            call_id=call_id,
            gateway_id=GATEWAY,
            transport="twilio",
            agent_id="default",
            audio_out=TELEPHONE,
        )
    )
    yield call_id
    await registry.forget(call_id, gateway_id=GATEWAY)
    keys = [key async for key in redis.scan_iter(match=f"voicebus:call:{call_id}:*")]
    if keys:
        await redis.delete(*keys)


@asynccontextmanager
async def running(
    redis_url: str,
    redis: Redis,
    settings: AgentSettings,
    knowledge: KnowledgeBases | None = None,
) -> AsyncIterator[Agent]:
    bus = BusSettings(redis_url=redis_url, instance_id="agent-test")
    _, broker, lanes = build(settings=settings, bus=bus, knowledge=knowledge)
    agent = Agent(broker=broker, lanes=lanes, store=RedisConversationStore(redis=redis, ttl_s=60))

    @broker.subscriber(REPLIES.name, group_id="test-observer")
    async def observe_replies(env: Envelope[ReplyEvent]) -> None:
        if isinstance(env.event, ReplyTextChunk):
            agent.replies.append(cast(Envelope[ReplyTextChunk], env))
            agent.replied.set()
        else:
            agent.cancellations.append(cast(Envelope[ReplyCancelled], env))

    @broker.subscriber(gateway_topic(GATEWAY).name, group_id="test-observer")
    async def observe_gateway(env: Envelope[GatewayEvent]) -> None:
        agent.commands.append(env)

    @broker.subscriber(TOOLS.name, group_id="test-observer")
    async def observe_tools(env: Envelope[ToolEvent]) -> None:
        agent.tools.append(env)

    @broker.subscriber(TRANSCRIPTS.name, group_id="test-observer")
    async def observe_transcripts(env: Envelope[FinalTranscript]) -> None:
        if env.producer == "agent":
            agent.transcripts.append(env)

    async with TestKafkaBroker(broker) as test_broker:
        agent.broker = test_broker
        yield agent


@pytest.fixture
async def agent(redis_url: str, redis: Redis) -> AsyncIterator[Agent]:
    settings = AgentSettings(greeting="Welcome. Ask me anything.")
    async with running(redis_url, redis, settings) as agent:
        yield agent


async def send(agent: Agent, topic: str, env: Envelope[Any]) -> None:
    """Deliver `env` to the agent and wait until it has acted on it."""
    await agent.broker.publish(
        env.model_dump_json().encode(), topic, key=env.call_id.encode(), headers=headers_of(env)
    )
    await agent.lanes.idle()


async def say(agent: Agent, call_id: str, turn: str, text: str, duration_ms: int = 1500) -> None:
    heard = FinalTranscript(turn_id=f"{call_id}:{turn}", text=text, duration_ms=duration_ms)
    await send(agent, TRANSCRIPTS.name, envelope(heard, call_id=call_id, producer="stt"))


async def start_with(
    agent: Agent, spec: AgentSpec, call_id: str, *, direction: Direction = "inbound"
) -> None:
    """Announce agent `spec`, then start call `call_id` with it."""
    announced = envelope(AgentConfigured(agent=spec), call_id=spec.agent_id, producer="agent")
    await send(agent, AGENTS.name, announced)
    started = CallStarted(
        transport="twilio",
        agent_id=spec.agent_id,
        gateway_id=GATEWAY,
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
        direction=direction,
    )
    await send(agent, CALLS.name, envelope(started, call_id=call_id, producer="gateway"))


async def test_call_start_is_greeted(agent: Agent) -> None:
    call_id = f"CA{uuid.uuid4().hex}"
    started = CallStarted(
        transport="twilio",
        agent_id="default",
        gateway_id="gw",
        audio_in=TELEPHONE,
        audio_out=TELEPHONE,
    )
    await send(agent, CALLS.name, envelope(started, call_id=call_id, producer="gateway"))
    assert agent.said() == ["Welcome.", "Ask me anything.", ""]
    assert agent.replies[-1].event.last
    assert all(r.call_id == call_id and r.event.in_reply_to is None for r in agent.replies)


async def test_transcript_is_answered_with_stamps_and_redelivery_repeats_the_same_events(
    agent: Agent, call_id: str
) -> None:
    stamps = StageStamps(speech_ended=100.0, turn_ended=100.5, transcribed=101.0)
    heard = envelope(
        FinalTranscript(turn_id=f"{call_id}:t1", text="Book a table for two."),
        call_id=call_id,
        producer="stt",
        stamps=stamps,
    )
    await send(agent, TRANSCRIPTS.name, heard)
    first = list(agent.replies)
    assert first[0].event.text == "I heard you say: Book a table for two."
    assert first[0].event.in_reply_to == f"{call_id}:t1"
    assert first[0].stamps.transcribed == 101.0
    assert first[0].stamps.reply_first_text is not None

    await send(agent, TRANSCRIPTS.name, heard)
    again = agent.replies[len(first) :]
    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert [m.role for m in await agent.store.history(call_id)] == ["user", "agent"]


async def test_empty_transcript_gets_no_reply(agent: Agent) -> None:
    silence = FinalTranscript(turn_id="CAx:t1", text="  ")
    await send(agent, TRANSCRIPTS.name, envelope(silence, call_id="CAx", producer="stt"))
    assert agent.replies == []


async def pause_reply(agent: Agent, call_id: str, *, sentence: int, fraction: float) -> None:
    """The caller starts turn t2 over the reply to t1 (which must have been answered)."""
    paused = ReplyPaused(
        reply_id=f"{call_id}:t1:reply",
        turn_id=f"{call_id}:t2",
        sentence=sentence,
        fraction=fraction,
    )
    env = envelope(paused, call_id=call_id, producer="gateway")
    await send(agent, PLAYBACK.name, env)
    await send(agent, PLAYBACK.name, env)  # redelivered: the same pause


async def test_a_backchannel_over_the_reply_resumes_it_and_is_no_turn(
    agent: Agent, call_id: str
) -> None:
    await say(agent, call_id, "t1", "Book a table for two.")
    answered = agent.said()
    await pause_reply(agent, call_id, sentence=0, fraction=0.4)

    await say(agent, call_id, "t2", "Uh-huh.", duration_ms=450)

    assert [c.event for c in agent.commands] == [ResumePlayback()]
    assert agent.said() == answered
    assert agent.cancellations == []
    history = await agent.store.history(call_id)
    assert [(m.role, m.text) for m in history] == [
        ("user", "Book a table for two."),
        ("agent", "I heard you say: Book a table for two. What else can I do for you?"),
    ]
    assert await agent.store.paused(call_id) is None


async def test_a_cough_over_the_reply_resumes_it(agent: Agent, call_id: str) -> None:
    await say(agent, call_id, "t1", "Book a table for two.")
    await pause_reply(agent, call_id, sentence=1, fraction=0.0)
    await say(agent, call_id, "t2", "", duration_ms=300)
    assert [c.event for c in agent.commands] == [ResumePlayback()]
    assert len(await agent.store.history(call_id)) == 2


async def test_an_interruption_cancels_the_reply_keeps_what_was_heard_and_is_answered(
    agent: Agent, call_id: str
) -> None:
    await say(agent, call_id, "t1", "Book a table for two.")
    reply_id = f"{call_id}:t1:reply"
    # The caller heard the first sentence whole and half of "What else can I do for you?".
    await pause_reply(agent, call_id, sentence=1, fraction=0.5)

    await say(agent, call_id, "t2", "Actually, make it four.")

    heard = "I heard you say: Book a table for two. What else can I"
    assert [c.event for c in agent.commands] == [CancelReply(reply_id=reply_id)]
    assert [c.event for c in agent.cancellations] == [
        ReplyCancelled(reply_id=reply_id, heard_text=heard)
    ]
    answer = [r.event for r in agent.replies if r.event.in_reply_to == f"{call_id}:t2"]
    assert answer[0].text == "I heard you say: Actually, make it four."
    history = await agent.store.history(call_id)
    assert [(m.id, m.text) for m in history] == [
        (f"{call_id}:t1", "Book a table for two."),
        (reply_id, heard),
        (f"{call_id}:t2", "Actually, make it four."),
        (
            f"{call_id}:t2:reply",
            "I heard you say: Actually, make it four. What else can I do for you?",
        ),
    ]
    assert await agent.store.paused(call_id) is None


async def test_a_redelivered_interruption_cancels_once_with_the_same_ids(
    agent: Agent, call_id: str
) -> None:
    await say(agent, call_id, "t1", "Book a table for two.")
    await pause_reply(agent, call_id, sentence=0, fraction=0.0)
    interruption = envelope(
        FinalTranscript(turn_id=f"{call_id}:t2", text="Stop, stop."),
        call_id=call_id,
        producer="stt",
    )
    await send(agent, TRANSCRIPTS.name, interruption)
    answer = [r.event_id for r in agent.replies if r.event.in_reply_to == f"{call_id}:t2"]

    await send(agent, TRANSCRIPTS.name, interruption)

    assert len(agent.commands) == len(agent.cancellations) == 1
    # Derived from the transcript: a redelivery would send the very same command.
    assert agent.commands[0].event_id == derived_id(interruption.event_id, "control.cancel_reply")
    assert agent.cancellations[0].event.heard_text == ""
    again = [r.event_id for r in agent.replies if r.event.in_reply_to == f"{call_id}:t2"]
    assert again == answer + answer
    # Nothing of the reply was heard: it is gone from the history.
    assert [m.id for m in await agent.store.history(call_id)] == [
        f"{call_id}:t1",
        f"{call_id}:t2",
        f"{call_id}:t2:reply",
    ]


async def press(agent: Agent, call_id: str, keys: str) -> None:
    for key in keys:
        env = envelope(DtmfReceived(digit=key), call_id=call_id, producer="gateway")
        await send(agent, CALLS.name, env)


async def test_keys_submitted_with_hash_are_answered_as_a_turn(agent: Agent, call_id: str) -> None:
    await press(agent, call_id, "123")
    assert agent.replies == []
    await press(agent, call_id, "#")
    assert agent.said()[0] == "I heard you say: pressed 1 2 3."
    [turn, _] = await agent.store.history(call_id)
    assert (turn.role, turn.text) == ("user", "pressed 1 2 3")
    assert turn.id.startswith(f"{call_id}:dtmf-")


async def test_keys_are_submitted_when_the_caller_stops_typing(
    redis_url: str, redis: Redis, call_id: str
) -> None:
    async with running(redis_url, redis, AgentSettings(dtmf_timeout_ms=20)) as agent:
        await press(agent, call_id, "7")
        await asyncio.wait_for(agent.replied.wait(), timeout=10)
        assert agent.said()[0] == "I heard you say: pressed 7."


async def caller_speaks(agent: Agent, call_id: str, turn: str) -> None:
    """Media tells of a whole turn: its speech started, then stopped."""
    turn_id = f"{call_id}:{turn}"
    for event in (
        SpeechStarted(turn_id=turn_id, audio_offset_ms=0),
        SpeechStopped(turn_id=turn_id, audio_offset_ms=900),
    ):
        await send(agent, SPEECH.name, envelope(event, call_id=call_id, producer="media"))


async def test_a_turn_that_trails_off_is_joined_to_what_the_caller_says_next(
    agent: Agent, call_id: str
) -> None:
    # STT lags: media saw the caller go on after the pause, and stop again...
    await caller_speaks(agent, call_id, "t2")
    await say(agent, call_id, "t1", "I would like to")  # ...before the first part's transcript
    await asyncio.sleep(1.2)  # longer than the wait: the later turn's transcript holds it
    assert agent.replies == []
    await say(agent, call_id, "t2", "book a table for two.")
    assert agent.said()[0] == "I heard you say: I would like to book a table for two."
    assert {r.event.in_reply_to for r in agent.replies} == {f"{call_id}:t2"}


async def test_a_turn_that_trails_off_is_answered_once_the_caller_stays_quiet(
    redis_url: str, redis: Redis, call_id: str
) -> None:
    async with running(redis_url, redis, AgentSettings(unfinished_turn_wait_ms=50)) as agent:
        await say(agent, call_id, "t1", "So I want to...")
        await asyncio.wait_for(agent.replied.wait(), timeout=10)
        assert agent.said()[0] == "I heard you say: So I want to."


async def test_with_a_model_configured_the_agent_answers_with_it_and_its_tools_reach_the_call(
    redis_url: str, redis: Redis, call_id: str
) -> None:
    async with FakeOpenAI() as model:
        model.answer(
            "Sure. Connecting you now.", tool_calls=[("transfer_call", {"to": "+14155550100"})]
        )
        model.answer("You are being transferred.")
        settings = AgentSettings(
            llm_model="voice-model", llm_base_url=model.base_url, llm_api_key=model.api_key
        )
        async with running(redis_url, redis, settings) as agent:
            heard = FinalTranscript(turn_id=f"{call_id}:t1", text="Put me through to sales.")
            await send(agent, TRANSCRIPTS.name, envelope(heard, call_id=call_id, producer="stt"))

    assert agent.said() == ["Sure.", "Connecting you now.", "You are being transferred.", ""]
    assert [env.event for env in agent.commands] == [TransferCall(to="+14155550100")]
    assert model.requests[0]["model"] == "voice-model"
    assert model.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "Put me through to sales.",
    }


async def test_each_call_gets_its_agents_greeting_prompt_and_model(
    redis_url: str, redis: Redis, call_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeOpenAI() as model:
        model.answer("Sales here. Which boat?")
        sales = AgentSpec(
            agent_id="sales",
            name="Sales",
            greeting="Sales desk, hello.",
            system_prompt="You sell boats.",
            llm=LanguageModel(
                model="boat-model", base_url=model.base_url, api_key_secret="FAKE_LLM"
            ),
        )
        monkeypatch.setenv("VOICEBUS_SECRET_FAKE_LLM", model.api_key)
        settings = AgentSettings()  # no model of the service's own
        async with running(redis_url, redis, settings) as agent:
            await start_with(agent, sales, call_id)
            await say(agent, call_id, "t1", "I want a boat.")

    assert agent.said() == ["Sales desk, hello.", "", "Sales here.", "Which boat?", ""]
    [request] = model.requests
    assert request["model"] == "boat-model"
    assert request["messages"][0] == {"role": "system", "content": "You sell boats."}


async def test_an_agents_http_tool_is_offered_to_its_model_and_its_answer_read_back(
    redis_url: str, redis: Redis, call_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, str]] = []

    async def orders(request: Request) -> JSONResponse:
        asked.append(dict(request.query_params))
        return JSONResponse({"status": "shipped"})

    shop = Starlette(routes=[Route("/orders", orders)])
    async with FakeOpenAI() as model, serve_asgi(shop) as shop_url:
        model.answer(tool_calls=[("check_order", {"order": "42"})])
        model.answer("It has shipped.")
        agent_spec = AgentSpec(
            agent_id="shop",
            name="Shop",
            llm=LanguageModel(
                model="shop-model", base_url=model.base_url, api_key_secret="FAKE_LLM"
            ),
            tools=(
                HttpTool(
                    name="check_order",
                    description="Look an order up.",
                    url=f"{shop_url}/orders",
                    method="GET",
                ),
            ),
        )
        monkeypatch.setenv("VOICEBUS_SECRET_FAKE_LLM", model.api_key)
        settings = AgentSettings()
        async with running(redis_url, redis, settings) as agent:
            await start_with(agent, agent_spec, call_id)
            await say(agent, call_id, "t1", "Where is order 42?")

    assert "It has shipped." in agent.said()
    assert asked == [{"order": "42"}]
    called, returned = (env.event for env in agent.tools)
    assert isinstance(called, ToolCalled)
    assert (called.name, json.loads(called.arguments)) == ("check_order", {"order": "42"})
    assert isinstance(returned, ToolReturned)
    assert (returned.result, returned.failed) == ('{"status":"shipped"}', False)
    assert returned.tool_call_id == called.tool_call_id
    assert {env.call_id for env in agent.tools} == {call_id}
    offered = {t["function"]["name"] for t in model.requests[0]["tools"]}
    assert offered == {"end_call", "transfer_call", "send_dtmf", "check_order"}
    assert model.requests[1]["messages"][-1]["content"] == '{"status":"shipped"}'


async def test_an_agents_knowledge_base_informs_each_answer_and_is_a_tool(
    redis_url: str, redis: Redis, call_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=E5Embedder()
    )
    await knowledge.add(
        "harbor", "harbor.md", "# Pets\nDogs are welcome on every boat if they wear a life jacket."
    )
    async with FakeOpenAI() as model:
        model.answer("Yes, dogs are welcome.")
        harbor = AgentSpec(
            agent_id="harbor",
            name="Harbor",
            llm=LanguageModel(model="m", base_url=model.base_url, api_key_secret="FAKE_LLM"),
            knowledge_base=KnowledgeBaseUse(id="harbor", auto_context=True),
        )
        monkeypatch.setenv("VOICEBUS_SECRET_FAKE_LLM", model.api_key)
        settings = AgentSettings()
        async with running(redis_url, redis, settings, knowledge) as agent:
            await start_with(agent, harbor, call_id)
            await say(agent, call_id, "t1", "Can I bring my dog?")
    await knowledge.close()

    assert "Yes, dogs are welcome." in agent.said()
    [request] = model.requests
    instructions = request["messages"][0]["content"]
    assert KNOWLEDGE_HEADER in instructions
    assert "Dogs are welcome on every boat" in instructions
    assert "search_knowledge_base" in {t["function"]["name"] for t in request["tools"]}


CALLING_OUT = AgentSpec(
    agent_id="outbound",
    name="Outbound",
    greeting="Hi, this is Harbor Light.",
    voicemail=Voicemail(detect=True, message="Please call us back.", decision_timeout_ms=30_000),
)


async def answered(agent: Agent, call_id: str, answered_by: AnsweredBy) -> None:
    decision = CallAnsweredBy(answered_by=answered_by, detection_ms=2500)
    await send(agent, CALLS.name, envelope(decision, call_id=call_id, producer="gateway"))


async def test_an_outbound_greeting_waits_for_a_person_to_be_known_to_have_answered(
    agent: Agent, call_id: str
) -> None:
    await start_with(agent, CALLING_OUT, call_id, direction="outbound")
    await say(agent, call_id, "t1", "Hello?")  # heard while the carrier listens: no turn
    assert agent.said() == []
    await answered(agent, call_id, "human")
    assert agent.said() == ["Hi, this is Harbor Light.", ""]
    assert agent.commands == []


@pytest.mark.parametrize(
    ("spec", "said", "after_reply"),
    [
        (CALLING_OUT, ["Please call us back.", ""], "voicemail"),
        (
            CALLING_OUT.model_copy(update={"voicemail": Voicemail(detect=True)}),
            [],
            None,
        ),
    ],
    ids=["with-a-message", "without"],
)
async def test_a_machine_gets_the_message_then_the_call_ends_or_just_ends(
    agent: Agent, call_id: str, spec: AgentSpec, said: list[str], after_reply: str | None
) -> None:
    # The decision may come before the call's start reaches the agent.
    await answered(agent, call_id, "machine_end_beep")
    await start_with(agent, spec, call_id, direction="outbound")
    assert agent.said() == said
    [command] = [c.event for c in agent.commands]
    assert command == HangUp(
        reason="answered by machine_end_beep",
        after_reply=None if after_reply is None else f"{call_id}:{after_reply}",
    )


async def test_without_a_decision_the_agent_greets_when_its_wait_is_over(
    agent: Agent, call_id: str
) -> None:
    impatient = CALLING_OUT.model_copy(
        update={"voicemail": Voicemail(detect=True, decision_timeout_ms=1_000)}
    )
    await start_with(agent, impatient, call_id, direction="outbound")
    assert agent.said() == []
    await asyncio.wait_for(agent.replied.wait(), timeout=10)
    assert agent.said()[0] == "Hi, this is Harbor Light."
    await answered(agent, call_id, "machine_end_beep")  # too late: nothing more happens
    assert agent.commands == []


async def test_inbound_calls_are_greeted_at_once_whatever_the_agent_listens_for(
    agent: Agent, call_id: str
) -> None:
    await start_with(agent, CALLING_OUT, call_id)
    assert agent.said() == ["Hi, this is Harbor Light.", ""]
