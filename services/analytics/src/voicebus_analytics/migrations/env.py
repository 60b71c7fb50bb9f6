"""Alembic environment: the URL from the caller (`migrate`) or the service's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from voicebus_analytics.database import create_engine
from voicebus_analytics.migrate import DATABASE_URL_ATTRIBUTE
from voicebus_analytics.settings import Settings
from voicebus_analytics.tables import Base


def _migrate(connection: Connection) -> None:
    # Batch mode lets later migrations alter tables on SQLite, which has little ALTER TABLE.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _main() -> None:
    if context.is_offline_mode():
        raise SystemExit("analytics migrations run against a live database only (no --sql)")
    url = context.config.attributes.get(DATABASE_URL_ATTRIBUTE) or Settings().database_url
    asyncio.run(_migrate_online(url))


_main()
