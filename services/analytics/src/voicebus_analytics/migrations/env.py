"""Alembic environment of the analytics tables."""

from __future__ import annotations

from voicebus_analytics.settings import Settings
from voicebus_analytics.tables import Base
from voicebus_sql.migrations import run_migrations

run_migrations(Base.metadata, default_url=lambda: Settings().database_url)
