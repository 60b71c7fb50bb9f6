"""The Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.tables import Base
from voicebus_sql.engine import create_engine

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


def differences(url: str) -> list[object]:
    """How the database's analytics tables differ from the models (other services' tables in
    the same database are theirs)."""

    def ours(name: str | None, kind: str, _parent: object) -> bool:
        return kind != "table" or name in Base.metadata.tables

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"include_name": ours})
        return list(compare_metadata(context, Base.metadata))

    async def read() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_creates_the_tables_and_downgrade_removes_them(empty_database_url: str) -> None:
    MIGRATIONS.upgrade(empty_database_url)
    assert tables_in(empty_database_url) >= TABLES

    MIGRATIONS.downgrade(empty_database_url)
    assert not TABLES & tables_in(empty_database_url)


def test_the_migrated_schema_is_the_one_the_models_describe(database_url: str) -> None:
    assert differences(database_url) == []
