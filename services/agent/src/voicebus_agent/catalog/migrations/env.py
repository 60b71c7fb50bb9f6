"""Alembic environment of the agent catalog's tables."""

from __future__ import annotations

from voicebus_agent.catalog.settings import CatalogSettings
from voicebus_agent.catalog.tables import Base
from voicebus_sql.migrations import run_migrations

run_migrations(Base.metadata, default_url=lambda: CatalogSettings().database_url)
