"""The offline agent: no language model. It recognizes what the caller wants by meaning
(embedding similarity to example phrases of each intent) and answers with the intent's reply,
or from the knowledge base, saying the sentences of the best passage nearest to the question.

With the demo's intents and knowledge (`voicebus_agent.demo`), it is the agent `make run`
answers with when no model is configured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from voicebus_agent.conversation import split_sentences
from voicebus_agent.knowledge.embeddings import Embedder, Vectors
from voicebus_agent.knowledge.store import KnowledgeBases, Passage
from voicebus_agent.ports import Message

DEMO_KNOWLEDGE_BASE = "demo"
DEMO_DOCUMENT = "harbor-light.md"
INTENT_THRESHOLD = 0.90
INTENT_MARGIN = 0.05
"""A caller's words are taken for an intent when their similarity to one of its examples is at
least INTENT_THRESHOLD and beats the best knowledge passage by INTENT_MARGIN.
multilingual-e5-small's similarities are compressed: on the demo, small talk scored 0.91-0.95
against its intent and 0.77-0.84 against the knowledge; the 30 knowledge questions reached at
most 0.90 against a small-talk intent, within 0.07 of their best passage."""
KNOWLEDGE_THRESHOLD = 0.80
"""Similarity of the best passage below which the question is taken as off the topic (the demo's
questions scored 0.79-0.89; small talk and off-topic lines 0.77-0.83)."""
SENTENCES_SPOKEN = 2
NOT_KNOWN = (
    "Sorry, I don't know about that. I can tell you about our boats, prices, opening hours, "
    "lessons and bookings."
)
DIDNT_HEAR = "Sorry, I didn't catch that. Could you say it again?"


@dataclass(frozen=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    reply: str | None
    """What the agent says; None: the knowledge base answers."""


def load_intents(path: Path) -> list[Intent]:
    return [
        Intent(name=i["intent"], examples=tuple(i["examples"]), reply=i["reply"])
        for i in json.loads(path.read_text())
    ]


def demo_files() -> tuple[list[Intent], str]:
    """The demo agent's intents and knowledge document."""
    demo = files("voicebus_agent.demo")
    return load_intents(Path(str(demo / "intents.json"))), (demo / "knowledge.md").read_text()


class IntentMatcher:
    """The intents, their examples embedded once, when it is made (seconds of CPU: at start,
    not on a caller's first turn)."""

    def __init__(self, intents: Sequence[Intent], embedder: Embedder) -> None:
        self._owners = [intent for intent in intents for _ in intent.examples]
        self._examples = embedder.passages([e for intent in intents for e in intent.examples])

    def nearest(self, query: Vectors) -> tuple[Intent, float]:
        """The intent of the example nearest to an embedded query, and their similarity."""
        scores = self._examples @ query
        best = int(np.argmax(scores))
        return self._owners[best], float(scores[best])


class OfflineResponder:
    """Responder that needs no model: intents first, then the knowledge base."""

    def __init__(
        self,
        *,
        intents: IntentMatcher,
        knowledge: KnowledgeBases,
        knowledge_base: str,
        embedder: Embedder,
    ) -> None:
        self._intents = intents
        self._knowledge = knowledge
        self._knowledge_base = knowledge_base
        self._embedder = embedder

    async def respond(
        self, history: Sequence[Message], *, call_id: str, reply_id: str
    ) -> AsyncIterator[str]:
        heard = history[-1].text.strip() if history and history[-1].role == "user" else ""
        if not heard:
            yield DIDNT_HEAR
            return
        query = await asyncio.to_thread(self._embedder.query, heard)  # once, for all below
        intent, similarity = self._intents.nearest(query)
        found = await self._knowledge.nearest(self._knowledge_base, query, limit=1)
        known = found[0] if found else None
        if (
            intent.reply is not None
            and similarity >= INTENT_THRESHOLD
            and similarity >= (known.score if known else 0.0) + INTENT_MARGIN
        ):
            answer = split_sentences(intent.reply)
        elif known is not None and known.score >= KNOWLEDGE_THRESHOLD:
            answer = await self._sentences_of(known, query)
        else:
            answer = [NOT_KNOWN]
        for sentence in answer:
            yield sentence

    async def _sentences_of(self, best: Passage, query: Vectors) -> list[str]:
        """The sentences of `best` nearest to the embedded question, in their order."""
        sentences = split_sentences(best.body)
        if len(sentences) <= SENTENCES_SPOKEN:
            return sentences
        context = f"{best.heading}: " if best.heading else ""
        vectors = await asyncio.to_thread(self._embedder.passages, [context + s for s in sentences])
        scores = vectors @ query
        chosen = sorted(np.argsort(-scores)[:SENTENCES_SPOKEN])
        return [sentences[i] for i in chosen]
