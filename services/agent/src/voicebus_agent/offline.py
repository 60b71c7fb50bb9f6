"""The offline agent: no language model. It recognizes what the caller wants by meaning
(embedding similarity to example phrases) and follows its workflow: the transition the caller's
words take, the variables they give (`workflow.values`), the lines each node says. Otherwise it
answers with a small-talk intent's reply, or from the knowledge base, saying the sentences of
the best passage nearest to the question.

With the demo's workflow, intents and knowledge (`voicebus_agent.demo`), it is the agent
`make run` answers with when no model is configured.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from voicebus_agent.conversation import split_sentences
from voicebus_agent.knowledge.embeddings import Embedder, Vectors
from voicebus_agent.knowledge.store import KnowledgeBases, Passage
from voicebus_agent.ports import Message
from voicebus_agent.workflow.flow import Steps
from voicebus_agent.workflow.progress import Workflows, WorkflowTurn
from voicebus_agent.workflow.values import values_heard
from voicebus_contracts.agents import KnowledgeBaseUse, Transition, Workflow

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
NOTED = "Got it."


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


@dataclass(frozen=True)
class Demo:
    """The demo agent: its workflow, its small-talk intents and its knowledge document."""

    workflow: Workflow
    intents: list[Intent]
    knowledge: str


def demo_files() -> Demo:
    demo = files("voicebus_agent.demo")
    return Demo(
        workflow=Workflow.model_validate_json((demo / "workflow.json").read_text()),
        intents=load_intents(Path(str(demo / "intents.json"))),
        knowledge=(demo / "knowledge.md").read_text(),
    )


T = TypeVar("T")


class Examples(Generic[T]):
    """Things callers say, each standing for a `T` (an intent, a transition), embedded once
    when made (seconds of CPU for many: at start, not on a caller's turn)."""

    def __init__(self, owners: Sequence[tuple[T, Sequence[str]]], embedder: Embedder) -> None:
        self._owners = [owner for owner, examples in owners for _ in examples]
        texts = [example for _, examples in owners for example in examples]
        self._vectors = embedder.passages(texts) if texts else None

    def nearest(
        self, query: Vectors, among: Callable[[T], bool] = lambda _: True
    ) -> tuple[T, float] | None:
        """The owner of the example nearest to an embedded query (of those `among` admits)."""
        if self._vectors is None:
            return None
        scores = self._vectors @ query
        ranked = (i for i in np.argsort(-scores) if among(self._owners[i]))
        best = next(ranked, None)
        return None if best is None else (self._owners[best], float(scores[best]))


@dataclass(frozen=True)
class Meaning:
    """What the caller's words were found to mean, once per turn: their embedding, the nearest
    passage of the knowledge base and the nearest small-talk intent."""

    query: Vectors
    passage: Passage | None
    intent: tuple[Intent, float] | None

    @property
    def known(self) -> float:
        """How near the knowledge base came (0 without one)."""
        return self.passage.score if self.passage else 0.0


def _examples_of(transition: Transition) -> tuple[str, ...]:
    return transition.examples or ((transition.when,) if transition.when else ())


class OfflineResponder:
    """Responder that needs no model: its workflow first, then small talk, then knowledge."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        knowledge: KnowledgeBases | None,
        knowledge_base: str | None,
        intents: Sequence[Intent] = (),
        workflow: Workflows | None = None,
    ) -> None:
        self._embedder = embedder
        self._knowledge = knowledge
        self._knowledge_base = knowledge_base
        self._intents = Examples([(i, i.examples) for i in intents], embedder)
        self._workflow = workflow
        ways = () if workflow is None else workflow.flow.workflow.nodes
        self._ways = Examples(
            [
                ((n.id, t), _examples_of(t))
                for n in ways
                for t in n.transitions
                if not t.data_driven
            ],
            embedder,
        )

    async def respond(
        self, history: Sequence[Message], *, call_id: str, reply_id: str
    ) -> AsyncIterator[str]:
        heard = history[-1].text.strip() if history and history[-1].role == "user" else ""
        if not heard:
            yield DIDNT_HEAR
            return
        query = await asyncio.to_thread(self._embedder.query, heard)  # once, for all below
        meant = Meaning(
            query=query, passage=await self._passage(query), intent=self._intents.nearest(query)
        )
        if self._workflow is None:
            answer = await self._answer(meant)
        else:
            turn = await self._workflow.turn(call_id, reply_id)
            answer = await self._step(turn, heard, meant)
        for line in answer:
            for sentence in split_sentences(line):
                yield sentence

    async def _step(self, turn: WorkflowTurn, heard: str, meant: Meaning) -> list[str]:
        """Where the caller's words take the workflow, and what the agent says about it."""
        flow = turn.flow
        values = values_heard(flow.missing(turn.state), heard, asking=turn.state.asking)
        steps = await turn.collect(values) if values else Steps(turn.state)
        if not steps.entered and (way := self._way_out(turn, meant)) is not None:
            steps = await turn.go(way.to)
            if more := values_heard(flow.missing(turn.state), heard, asking=None):
                steps = steps.then(await turn.collect(more))
        lines = [line for node in steps.entered if (line := flow.say(node, turn.state))]
        if not steps.entered and not values:
            lines = await self._answer(meant)
        if (missing := flow.missing(turn.state)) and not (lines and lines[-1].endswith("?")):
            variable = missing[0]
            lines.append(variable.ask or f"Could you tell me {variable.description}?")
            await turn.asked(variable)
        return lines or [NOTED]

    def _way_out(self, turn: WorkflowTurn, meant: Meaning) -> Transition | None:
        """The transition of the current node the caller's words take: one whose examples are
        as near to them as the intents' and the knowledge's nearest."""
        here = turn.state.node
        way = self._ways.nearest(meant.query, among=lambda owner: owner[0] == here)
        if way is None:
            return None
        (_, transition), similarity = way
        rival = max(meant.intent[1] if meant.intent else 0.0, meant.known + INTENT_MARGIN)
        return transition if similarity >= max(INTENT_THRESHOLD, rival) else None

    async def _answer(self, meant: Meaning) -> list[str]:
        """An intent's reply, else the knowledge's answer, else what the agent can talk about."""
        intent, known = meant.intent, meant.passage
        if (
            intent is not None
            and intent[0].reply is not None
            and intent[1] >= INTENT_THRESHOLD
            and intent[1] >= meant.known + INTENT_MARGIN
        ):
            return [intent[0].reply]
        if known is not None and known.score >= KNOWLEDGE_THRESHOLD:
            return await self._sentences_of(known, meant.query)
        return [NOT_KNOWN]

    async def _passage(self, query: Vectors) -> Passage | None:
        if self._knowledge is None or self._knowledge_base is None:
            return None
        found = await self._knowledge.nearest(self._knowledge_base, query, limit=1)
        return found[0] if found else None

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


class OfflineResponders:
    """Makes the offline responder of an agent that has a workflow or a knowledge base but no
    model (no small talk: that is the demo's)."""

    def __init__(self, *, embedder: Embedder, knowledge: KnowledgeBases | None) -> None:
        self._embedder = embedder
        self._knowledge = knowledge

    def __call__(
        self, *, knowledge: KnowledgeBaseUse | None, workflow: Workflows | None
    ) -> OfflineResponder:
        return OfflineResponder(
            embedder=self._embedder,
            knowledge=self._knowledge,
            knowledge_base=None if knowledge is None else knowledge.id,
            workflow=workflow,
        )
