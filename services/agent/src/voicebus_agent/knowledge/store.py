"""Knowledge bases in Qdrant: each one a collection of passages with their document's name;
Qdrant's local mode (a directory) embedded, a Qdrant server in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qdrant_client import AsyncQdrantClient, models

from voicebus_agent.knowledge.chunking import chunks_of
from voicebus_agent.knowledge.embeddings import Embedder, Vectors

COLLECTION_PREFIX = "voicebus_kb_"
PASSAGE_CHARS = 350
"""Passage size. On the demo question set, recall@3 was 0.77 at 300 characters, 0.73 at 350,
0.70 at 400 and 0.63 at 700: small passages embed one topic; 350 keeps a few sentences of
context for the model to read."""


@dataclass(frozen=True)
class Passage:
    text: str
    """The heading path and the body, as embedded."""
    document: str
    score: float
    heading: str
    body: str


@dataclass(frozen=True)
class Document:
    name: str
    passages: int


class KnowledgeUnavailableError(RuntimeError):
    """The knowledge bases' Qdrant could not be opened."""


def _collection(kb_id: str) -> str:
    return f"{COLLECTION_PREFIX}{kb_id}"


def _of_document(name: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="document", match=models.MatchValue(value=name))]
    )


class KnowledgeBases:
    """Every knowledge base, in the Qdrant `qdrant` makes, embedded with `embedder`. A
    document added again under the same name replaces its passages.

    The client is made on first use: Qdrant's local mode locks its directory, and an agent
    process that never touches a knowledge base should not hold it."""

    def __init__(self, *, qdrant: Callable[[], AsyncQdrantClient], embedder: Embedder) -> None:
        self._make_client = qdrant
        self._qdrant: AsyncQdrantClient | None = None
        self._embedder = embedder

    async def _client(self) -> AsyncQdrantClient:
        if self._qdrant is None:
            try:
                self._qdrant = self._make_client()
            except RuntimeError as locked:  # local mode, already open in another process
                raise KnowledgeUnavailableError(
                    f"{locked} (several agent processes need a Qdrant server: set "
                    "VOICEBUS_AGENT_QDRANT_URL)"
                ) from locked
        return self._qdrant

    async def close(self) -> None:
        if self._qdrant is not None:
            await self._qdrant.close()

    async def add(self, kb_id: str, name: str, text: str) -> Document:
        chunks = chunks_of(text, max_chars=PASSAGE_CHARS)
        vectors = await asyncio.to_thread(self._embedder.passages, [c.text for c in chunks])
        collection = _collection(kb_id)
        if not await (await self._client()).collection_exists(collection):
            await (await self._client()).create_collection(
                collection,
                vectors_config=models.VectorParams(
                    size=self._embedder.dimensions, distance=models.Distance.COSINE
                ),
            )
        await self.remove(kb_id, name)
        await (await self._client()).upsert(
            collection,
            points=[
                models.PointStruct(
                    # Named by document and position: adding the same document twice is one.
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kb_id}/{name}/{n}")),
                    vector=list(map(float, vector)),
                    payload={
                        "document": name,
                        "text": chunk.text,
                        "heading": chunk.heading,
                        "body": chunk.body,
                        "position": n,
                    },
                )
                for n, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
            ],
        )
        return Document(name=name, passages=len(chunks))

    async def search(self, kb_id: str, query: str, *, limit: int = 3) -> list[Passage]:
        """The passages of `kb_id` nearest in meaning to `query`, best first."""
        if not query.strip():
            return []
        vector = await asyncio.to_thread(self._embedder.query, query)
        return await self.nearest(kb_id, vector, limit=limit)

    async def nearest(self, kb_id: str, vector: Vectors, *, limit: int) -> list[Passage]:
        """The passages of `kb_id` nearest to an already embedded query, best first."""
        collection = _collection(kb_id)
        qdrant = await self._client()
        if not await qdrant.collection_exists(collection):
            return []
        found = await qdrant.query_points(
            collection, query=list(map(float, vector)), limit=limit, with_payload=True
        )
        return [
            Passage(
                text=str(point.payload["text"]),
                document=str(point.payload["document"]),
                score=point.score,
                heading=str(point.payload.get("heading", "")),
                body=str(point.payload.get("body", point.payload["text"])),
            )
            for point in found.points
            if point.payload is not None
        ]

    async def documents(self, kb_id: str) -> list[Document]:
        collection = _collection(kb_id)
        if not await (await self._client()).collection_exists(collection):
            return []
        counts: dict[str, int] = {}
        offset: models.ExtendedPointId | None = None
        while True:
            points, offset = await (await self._client()).scroll(
                collection, limit=256, offset=offset, with_payload=["document"]
            )
            for point in points:
                name = str((point.payload or {}).get("document"))
                counts[name] = counts.get(name, 0) + 1
            if offset is None:
                return [Document(name, n) for name, n in sorted(counts.items())]

    async def remove(self, kb_id: str, name: str) -> int:
        """Drop document `name`'s passages; how many there were."""
        collection = _collection(kb_id)
        if not await (await self._client()).collection_exists(collection):
            return 0
        existing = await (await self._client()).count(collection, count_filter=_of_document(name))
        if existing.count:
            await (await self._client()).delete(
                collection, points_selector=models.FilterSelector(filter=_of_document(name))
            )
        return existing.count


def context_of(passages: Sequence[Passage]) -> str:
    """Passages as text for a model to read."""
    return "\n".join(f"- {p.text}" for p in passages)
