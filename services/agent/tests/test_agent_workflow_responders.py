"""Workflows driving the agent: the offline demo's booking flow with the real embedding model,
and a language model (the local OpenAI-compatible fake) moved from step to step by its tools."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI
from qdrant_client import AsyncQdrantClient

from voicebus_agent.knowledge.embeddings import E5Embedder
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.llm import LlmResponder, LlmSettings
from voicebus_agent.offline import DEMO_DOCUMENT, DEMO_KNOWLEDGE_BASE, OfflineResponder, demo_files
from voicebus_agent.ports import Message, Responder, ToolCall
from voicebus_agent.tools import CallTools
from voicebus_agent.workflow.flow import Flow
from voicebus_agent.workflow.progress import Workflows
from voicebus_agent.workflow.script import GO_TO_STEP, SET_VARIABLES, WorkflowScript
from voicebus_agent.workflow.state import MemoryWorkflowStates
from voicebus_contracts import HangUp, ToolCalled, ToolReturned, WorkflowProgressed
from voicebus_contracts.agents import Transition, Variable, Workflow, WorkflowNode
from voicebus_devstack.commands import SentCommands
from voicebus_devstack.fake_openai import FakeOpenAI

CALL = "CA-flow"
Recorded = ToolCalled | ToolReturned | WorkflowProgressed


class Record:
    def __init__(self) -> None:
        self.events: list[Recorded] = []

    async def __call__(self, call_id: str, event: Recorded) -> None:
        self.events.append(event)

    def progress(self) -> list[WorkflowProgressed]:
        return [e for e in self.events if isinstance(e, WorkflowProgressed)]


class Caller:
    """Talks to a responder turn after turn, keeping the history as the agent would."""

    def __init__(self, responder: Responder) -> None:
        self._responder = responder
        self.history: list[Message] = []

    async def says(self, text: str) -> str:
        turn = f"t{len(self.history)}"
        self.history.append(Message(id=turn, role="user", text=text))
        reply = [
            s
            async for s in self._responder.respond(
                self.history, call_id=CALL, reply_id=f"{turn}:reply"
            )
        ]
        self.history.append(Message(id=f"{turn}:reply", role="agent", text=" ".join(reply)))
        return " ".join(reply)


@pytest.fixture
async def knowledge() -> AsyncIterator[KnowledgeBases]:
    bases = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=E5Embedder()
    )
    await bases.add(DEMO_KNOWLEDGE_BASE, DEMO_DOCUMENT, demo_files().knowledge)
    yield bases
    await bases.close()


async def test_the_offline_demo_takes_a_booking_and_ends_the_call_on_goodbye(
    knowledge: KnowledgeBases,
) -> None:
    demo = demo_files()
    record, commands = Record(), SentCommands()
    workflow = Workflows(
        Flow(demo.workflow), states=MemoryWorkflowStates(), record=record, control=commands
    )
    caller = Caller(
        OfflineResponder(
            embedder=E5Embedder(),
            knowledge=knowledge,
            knowledge_base=DEMO_KNOWLEDGE_BASE,
            intents=demo.intents,
            workflow=workflow,
        )
    )

    # A question is answered from the knowledge, and the flow stays where it is.
    assert "euros" in (await caller.says("How much does it cost to rent a kayak?"))
    booking = await caller.says("Can I reserve a kayak for Saturday?")
    assert "book" in booking
    assert "how many people" in booking.lower()
    confirm = await caller.says("There will be three of us.")
    assert "kayak, Saturday, for 3 people" in confirm
    assert "the team will call you back" in (await caller.says("Yes please")).lower()
    assert commands.sent == []
    assert "goodbye" in (await caller.says("That's all, bye now.")).lower()

    assert commands.sent == [
        (CALL, HangUp(reason="workflow ended at goodbye", after_reply="t8:reply"))
    ]
    steps = [(p.previous_node, p.node) for p in record.progress()]
    assert steps == [
        ("help", "booking"),
        ("booking", "booking"),  # the boat and the day, heard in the words that led there
        ("booking", "confirm"),
        ("confirm", "help"),  # through `noted`, which said its line and went back
        ("help", "goodbye"),
    ]
    assert record.progress()[1].variables == {"boat": "kayak", "day": "Saturday"}
    assert record.progress()[-1].variables == {"boat": "kayak", "day": "Saturday", "people": "3"}


async def test_the_offline_agent_asks_again_for_what_it_did_not_get(
    knowledge: KnowledgeBases,
) -> None:
    demo = demo_files()
    workflow = Workflows(
        Flow(demo.workflow),
        states=MemoryWorkflowStates(),
        record=Record(),
        control=SentCommands(),
    )
    caller = Caller(
        OfflineResponder(
            embedder=E5Embedder(), knowledge=None, knowledge_base=None, workflow=workflow
        )
    )
    assert "which boat" in (await caller.says("I'd like to book a boat")).lower()
    assert "which boat" in (await caller.says("hmm, let me think")).lower()
    assert "what day" in (await caller.says("a rowing boat")).lower()


ORDER = Workflow(
    start="greet",
    nodes=(
        WorkflowNode(
            id="greet",
            instructions="Find out what the caller wants.",
            tools=("end_call",),
            transitions=(Transition(to="order", when="the caller wants to order a pizza"),),
        ),
        WorkflowNode(
            id="order",
            instructions="Take the order.",
            collect=(
                Variable(name="size", description="pizza size", choices=("small", "large")),
                Variable(name="count", description="how many pizzas", kind="number"),
            ),
            transitions=(Transition(to="bye", once_collected=True),),
        ),
        WorkflowNode(id="bye", say="Your {count} {size} pizzas are on the way.", end_call=True),
    ),
)


async def test_a_model_is_moved_through_the_flow_by_its_step_tools() -> None:
    record, commands = Record(), SentCommands()
    workflow = Workflows(
        Flow(ORDER), states=MemoryWorkflowStates(), record=record, control=commands
    )
    async with FakeOpenAI() as fake:
        script = WorkflowScript(
            workflow, prompt="You sell pizza.", toolbox=CallTools(commands), record=record
        )
        caller = Caller(
            LlmResponder(
                client=AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0),
                settings=LlmSettings(model="test-model"),
                script=script,
            )
        )
        fake.answer(tool_calls=[(GO_TO_STEP, {"step": "order"})])
        fake.answer("Sure. What size, and how many?")
        fake.answer(tool_calls=[(SET_VARIABLES, {"size": "large", "count": 2.0})])
        fake.answer("Two large pizzas are on the way. Bye!")

        assert await caller.says("I want pizza") == "Sure. What size, and how many?"
        assert await caller.says("Two large ones") == "Two large pizzas are on the way. Bye!"
        instructions = [r["messages"][0]["content"] for r in fake.requests]
        offered = [{t["function"]["name"] for t in r.get("tools", ())} for r in fake.requests]

    # At the start: its own instructions, only the tools it allows, and the way on.
    assert "You sell pizza." in instructions[0]
    assert "Find out what" in instructions[0]
    assert offered[0] == {"end_call", GO_TO_STEP}
    # After moving: the order step's instructions, what it still needs, and a tool to save it.
    assert "Take the order." in instructions[1]
    assert "size: pizza size" in instructions[1]
    assert offered[1] == {"end_call", "transfer_call", "send_dtmf", SET_VARIABLES}
    # Saving the last variable takes the data-driven way to the last step, whose line the
    # model is told to say, and the call ends after this reply.
    assert "Your 2 large pizzas are on the way." in instructions[3]
    assert "last step" in instructions[3]
    assert commands.sent == [(CALL, HangUp(reason="workflow ended at bye", after_reply="t2:reply"))]
    assert [(p.node, p.variables) for p in record.progress()] == [
        ("order", {}),
        ("bye", {"size": "large", "count": "2"}),
    ]
    called = [e.name for e in record.events if isinstance(e, ToolCalled)]
    assert called == [GO_TO_STEP, SET_VARIABLES]


async def test_a_step_tool_misused_by_the_model_is_refused_to_it_not_raised() -> None:
    workflow = Workflows(
        Flow(ORDER), states=MemoryWorkflowStates(), record=Record(), control=SentCommands()
    )
    script = WorkflowScript(workflow, prompt="", toolbox=CallTools(SentCommands()), record=Record())
    scene = await script.scene(CALL, "t0:reply")
    toolbox = scene.toolbox()
    wrong = ToolCall(id="1", name=GO_TO_STEP, arguments='{"step": "bye"}')
    assert "no way to 'bye'" in await toolbox.run(wrong, call_id=CALL, reply_id="t0:reply")
    hidden = ToolCall(id="2", name="transfer_call", arguments='{"to": "+14155550100"}')
    refused = await toolbox.run(hidden, call_id=CALL, reply_id="t0:reply")
    assert "no tool named 'transfer_call'" in refused  # not offered at this step
