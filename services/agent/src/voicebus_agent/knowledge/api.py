"""The knowledge bases' REST API: documents uploaded (text, Markdown, PDF), listed, removed,
and searched, under /api/knowledge-bases/{kb_id}."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from voicebus_agent.knowledge.documents import MAX_DOCUMENT_BYTES, DocumentError, text_of
from voicebus_agent.knowledge.store import Document, KnowledgeBases, Passage
from voicebus_contracts.agents import AGENT_ID_PATTERN

KnowledgeBaseId = Annotated[str, Path(pattern=AGENT_ID_PATTERN)]


class Search(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=500)
    limit: int = Field(default=3, ge=1, le=20)


class Refusal(BaseModel):
    """Why a request was refused."""

    detail: str


def knowledge_router(knowledge: KnowledgeBases) -> APIRouter:
    router = APIRouter(prefix="/api/knowledge-bases/{kb_id}", tags=["knowledge bases"])

    @router.post(
        "/documents",
        status_code=status.HTTP_201_CREATED,
        responses={
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {
                "model": Refusal,
                "description": "The document cannot be read: its kind, its size or its content",
            }
        },
    )
    async def add_document(kb_id: KnowledgeBaseId, file: UploadFile) -> Document:
        """Add a document (text, Markdown or PDF); one of the same name is replaced."""
        data = await file.read(MAX_DOCUMENT_BYTES + 1)
        name = file.filename or "document"
        try:
            # A PDF takes a while to read: off the event loop the calls' replies run on.
            text = await asyncio.to_thread(text_of, name, file.content_type, data)
        except DocumentError as refused:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(refused)) from None
        return await knowledge.add(kb_id, name, text)

    @router.get("/documents")
    async def list_documents(kb_id: KnowledgeBaseId) -> list[Document]:
        return await knowledge.documents(kb_id)

    @router.delete(
        "/documents/{name}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={
            status.HTTP_404_NOT_FOUND: {"model": Refusal, "description": "No such document"}
        },
    )
    async def remove_document(kb_id: KnowledgeBaseId, name: str) -> None:
        if not await knowledge.remove(kb_id, name):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no document {name!r} in {kb_id!r}")

    @router.post("/search")
    async def search(kb_id: KnowledgeBaseId, body: Search) -> list[Passage]:
        """The passages nearest in meaning to the query, best first."""
        return await knowledge.search(kb_id, body.query, limit=body.limit)

    return router
