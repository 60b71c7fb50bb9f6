"""Schema migrations of the analytics tables (Alembic, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path

from voicebus_sql.migrations import Migrations

MIGRATIONS = Migrations(Path(__file__).with_name("alembic.ini"), what="the analytics tables")
