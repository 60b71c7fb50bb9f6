"""How well a knowledge base finds the answer to a caller's question: recall@k on the demo
agent's question set (30 paraphrased questions over its knowledge document)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files

from qdrant_client import AsyncQdrantClient

from voicebus_agent.knowledge.embeddings import E5Embedder
from voicebus_agent.knowledge.store import KnowledgeBases, Passage

DEMO = files("voicebus_agent.demo")


@dataclass(frozen=True)
class Question:
    question: str
    answer_contains: list[str]
    section: str

    def answered_by(self, passage: Passage) -> bool:
        """The passage holds every key phrase of the answer."""
        text = passage.text.lower()
        return all(phrase.lower() in text for phrase in self.answer_contains)


@dataclass(frozen=True)
class Recall:
    k: int
    found: int
    missed: list[str]
    """The questions none of whose k passages holds the answer."""

    @property
    def rate(self) -> float:
        return self.found / (self.found + len(self.missed))


def demo_questions() -> list[Question]:
    return [Question(**q) for q in json.loads((DEMO / "questions.json").read_text())]


async def measure_recall(*, k: int = 3) -> Recall:
    """Index the demo knowledge document in an in-memory Qdrant and ask every question."""
    knowledge = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=E5Embedder()
    )
    try:
        await knowledge.add("demo", "knowledge.md", (DEMO / "knowledge.md").read_text())
        found, missed = 0, []
        for question in demo_questions():
            passages = await knowledge.search("demo", question.question, limit=k)
            if any(question.answered_by(p) for p in passages):
                found += 1
            else:
                missed.append(question.question)
        return Recall(k=k, found=found, missed=missed)
    finally:
        await knowledge.close()
