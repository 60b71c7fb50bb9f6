"""The catalog's tables, as SQLAlchemy models (the migrations in migrations/ create them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voicebus_sql.types import UtcDateTime

AGENT_ID = String(63)
PHONE_NUMBER = String(16)
"""E.164: '+' and at most 15 digits."""


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class AgentRow(Base):
    __tablename__ = "agents"

    agent_id: Mapped[str] = mapped_column(AGENT_ID, primary_key=True)
    spec: Mapped[str] = mapped_column(Text)
    """The whole `AgentSpec`, as its JSON."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AgentNumberRow(Base):
    """The number a caller dials to reach an agent: its primary key makes a number reach one
    agent at most, even when two requests claim it at once."""

    __tablename__ = "agent_numbers"

    number: Mapped[str] = mapped_column(PHONE_NUMBER, primary_key=True)
    agent_id: Mapped[str] = mapped_column(
        AGENT_ID, ForeignKey("agents.agent_id", ondelete="CASCADE"), index=True
    )
