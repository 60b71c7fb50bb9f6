"""The offline demo agent: intents recognized by meaning, answers from the demo knowledge base,
with the real embedding model and an in-memory Qdrant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from voicebus_agent.knowledge.embeddings import E5Embedder, Vectors
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.offline import (
    DEMO_DOCUMENT,
    DEMO_KNOWLEDGE_BASE,
    DIDNT_HEAR,
    NOT_KNOWN,
    Intent,
    OfflineResponder,
    demo_files,
)
from voicebus_agent.ports import Message
from voicebus_agent.workflow.flow import Flow
from voicebus_agent.workflow.progress import Workflows
from voicebus_agent.workflow.state import MemoryWorkflowStates
from voicebus_devstack.commands import SentCommands


@pytest.fixture
async def demo() -> AsyncIterator[OfflineResponder]:
    knowledge = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=E5Embedder()
    )
    demo = demo_files()
    await knowledge.add(DEMO_KNOWLEDGE_BASE, DEMO_DOCUMENT, demo.knowledge)
    workflow = Workflows(
        Flow(demo.workflow),
        states=MemoryWorkflowStates(),
        record=lambda call_id, event: asyncio.sleep(0),
        control=SentCommands(),
    )
    yield OfflineResponder(
        intents=demo.intents,
        knowledge=knowledge,
        knowledge_base=DEMO_KNOWLEDGE_BASE,
        embedder=E5Embedder(),
        workflow=workflow,
    )
    await knowledge.close()


async def answer(responder: OfflineResponder, said: str) -> str:
    history = [Message(id="t1", role="user", text=said)]
    return " ".join([s async for s in responder.respond(history, call_id="c", reply_id="r")])


CALLER_LINES = [
    ("Hello there!", {"harbor light"}),
    ("Can I talk to a real person?", {"transfer", "connect", "colleague"}),
    ("Is it okay if I bring my dog along?", {"dog"}),
    ("How much is it to rent a kayak?", {"euros"}),
    ("I want to book a boat", {"which boat"}),
]


async def test_the_demo_answers_a_caller_sensibly(demo: OfflineResponder) -> None:
    for said, words in CALLER_LINES:
        reply = (await answer(demo, said)).lower()
        assert any(word in reply for word in words), (said, reply)


class FixedEmbedder:
    """Every text embedded to the vector of its first word, from a small table."""

    dimensions = 2
    table = {"hello": [1.0, 0.0], "weather": [0.0, 1.0]}

    def passages(self, texts: Sequence[str]) -> Vectors:
        return np.asarray([self.query(t) for t in texts], dtype=np.float32).reshape(-1, 2)

    def query(self, text: str) -> Vectors:
        return np.asarray(
            self.table.get(text.split(maxsplit=1)[0].lower(), [0.6, 0.8]), dtype=np.float32
        )


async def test_an_intent_or_the_knowledge_answers_and_nothing_else_is_known() -> None:
    knowledge = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=FixedEmbedder()
    )
    await knowledge.add("kb", "doc.txt", "weather is all this knows.")
    responder = OfflineResponder(
        intents=[Intent("hi", ("hello",), "Hi!")],
        knowledge=knowledge,
        knowledge_base="kb",
        embedder=FixedEmbedder(),
    )
    assert await answer(responder, "hello you") == "Hi!"
    assert await answer(responder, "weather today?") == "weather is all this knows."
    assert await answer(responder, "taxes?") == NOT_KNOWN
    assert await answer(responder, "  ") == DIDNT_HEAR
    await knowledge.close()
