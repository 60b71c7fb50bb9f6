"""The Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.tables import Base
from voicebus_sql.engine import create_engine
from voicebus_sql.migrations import differences

TABLES = {"calls", "turns", "reply_chunks"}


def tables_in(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda c: inspect(c).get_table_names())
        finally:
            await engine.dispose()
        return set(names)

    return asyncio.run(read())


def test_upgrade_creates_the_tables_and_downgrade_removes_them(empty_database_url: str) -> None:
    MIGRATIONS.upgrade(empty_database_url)
    assert tables_in(empty_database_url) >= TABLES

    MIGRATIONS.downgrade(empty_database_url)
    assert not TABLES & tables_in(empty_database_url)


def test_the_migrated_schema_is_the_one_the_models_describe(database_url: str) -> None:
    assert differences(database_url, Base.metadata) == []
