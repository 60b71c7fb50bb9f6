"""The analytics tables, as SQLAlchemy models (the migrations in migrations/ create them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voicebus_sql.types import UtcDateTime


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON().with_variant(JSONB, "postgresql"),
    }


CALL_ID = String(128)


class CallRow(Base):
    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(CALL_ID, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    transport: Mapped[str | None] = mapped_column(String(16))
    direction: Mapped[str | None] = mapped_column(String(8))
    agent_id: Mapped[str | None] = mapped_column(String(128))
    from_number: Mapped[str | None] = mapped_column(String)
    to_number: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    workflow_node: Mapped[str | None] = mapped_column(String(64))
    variables: Mapped[dict[str, Any] | None]
    """Every variable the call's workflow collected, as of `workflow_at`."""
    workflow_at: Mapped[datetime | None]
    """When the workflow progress kept here was made: an older one does not replace it."""
    summary: Mapped[str | None] = mapped_column(Text)
    extraction: Mapped[dict[str, Any] | None]
    succeeded: Mapped[bool | None] = mapped_column(Boolean)
    success_reason: Mapped[str | None] = mapped_column(Text)
    concluded_at: Mapped[datetime | None]
    """When the post-call results were drawn (after the call's end): drawn once per call."""
    notified_at: Mapped[datetime | None]
    """When telling the agent's webhook of the concluded call was over (told, refused, given up
    on or not sent), or there was no webhook to tell; until then, analytics' start takes it up
    again."""


class TurnRow(Base):
    """A caller turn (keyed by its turn id) or an agent turn (keyed by its reply id)."""

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("call_id", "role", "turn_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    call_id: Mapped[str] = mapped_column(CALL_ID, ForeignKey("calls.call_id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(8))
    turn_id: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text, default="")
    in_reply_to: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime]
    """When the turn's earliest event was created: its place in the conversation."""
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    """A caller turn's end of speech; an agent turn's cancellation, when the caller cut it off."""
    endpoint_ms: Mapped[float | None] = mapped_column(Float)
    stt_ms: Mapped[float | None] = mapped_column(Float)
    first_text_ms: Mapped[float | None] = mapped_column(Float)
    first_audio_ms: Mapped[float | None] = mapped_column(Float)
    send_ms: Mapped[float | None] = mapped_column(Float)
    voice_to_voice_ms: Mapped[float | None] = mapped_column(Float)
    stamps: Mapped[dict[str, Any] | None]
    """The raw stage stamps of the agent turn, from its playback event."""


class ReplyChunkRow(Base):
    __tablename__ = "reply_chunks"

    call_id: Mapped[str] = mapped_column(
        CALL_ID, ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True
    )
    reply_id: Mapped[str] = mapped_column(String, primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class WebhookDeliveryRow(Base):
    """One attempt to tell an agent's webhook that a call ended."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    call_id: Mapped[str] = mapped_column(
        CALL_ID, ForeignKey("calls.call_id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String)
    attempt: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class ToolCallRow(Base):
    """A tool the agent's model called during a call, and what it answered: written by its
    ToolCalled and its ToolReturned, in either order."""

    __tablename__ = "tool_calls"

    call_id: Mapped[str] = mapped_column(
        CALL_ID, ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True
    )
    tool_call_id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    arguments: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(Text)
    failed: Mapped[bool | None] = mapped_column(Boolean)
    duration_ms: Mapped[int | None]
    returned_at: Mapped[datetime | None]
