"""Schema migrations with Alembic, one history per service in the shared database.

A service ships its `alembic.ini` and migrations inside its package; its migrations' `env.py`
is two lines: `run_migrations(Base.metadata, default_url=...)`. Each service records its
revision in its own version table (`version_table` in its alembic.ini), so services migrate
independently.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData

from voicebus_sql.engine import create_engine, redacted

log = logging.getLogger(__name__)

DATABASE_URL_ATTRIBUTE = "database_url"
"""Key of `Config.attributes` that carries the URL to a migrations env.py."""


Command = Literal["serve", "migrate"]


def command_of(argv: list[str] | None, *, prog: str, description: str | None) -> Command:
    """The command line of a service with tables of its own: `serve` (the default) runs it,
    `migrate` brings its tables up to date (alembic upgrade head) and exits."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "migrate"],
        default="serve",
        help="serve: run the service (default); migrate: alembic upgrade head",
    )
    command: Command = parser.parse_args(argv).command
    return command


class Migrations:
    """The migrations described by `alembic_ini`, of `what` ("the analytics tables")."""

    def __init__(self, alembic_ini: Path, *, what: str) -> None:
        self._alembic_ini = alembic_ini
        self._what = what

    def _config(self, database_url: str) -> Config:
        config = Config(self._alembic_ini)
        # Passed as an attribute, not an ini option, so a '%' in a password needs no escaping.
        config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
        return config

    def upgrade(self, database_url: str, revision: str = "head") -> None:
        """Bring the schema up to `revision`. Runs its own event loop: call it outside one."""
        log.info("migrating %s in %s to %s", self._what, redacted(database_url), revision)
        command.upgrade(self._config(database_url), revision)

    def downgrade(self, database_url: str, revision: str = "base") -> None:
        """Take the schema down to `revision`. Runs its own event loop: call it outside one."""
        command.downgrade(self._config(database_url), revision)


def run_migrations(metadata: MetaData, *, default_url: Callable[[], str]) -> None:
    """The body of a migrations env.py: migrate the database Alembic was given (or the
    service's configured one) online, towards `metadata`."""
    if context.is_offline_mode():
        raise SystemExit("migrations run against a live database only (no --sql)")
    url = context.config.attributes.get(DATABASE_URL_ATTRIBUTE) or default_url()
    version_table = context.config.get_main_option("version_table") or "alembic_version"

    def migrate(connection: Connection) -> None:
        # Batch mode lets later migrations alter tables on SQLite, which has little ALTER TABLE.
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(online())


def differences(
    database_url: str, metadata: MetaData, *, version_table: str = "alembic_version"
) -> list[object]:
    """How the database's tables of `metadata` differ from it, as Alembic's autogenerate sees
    them; other services' tables in the same database are left out. Runs its own event loop."""

    def ours(name: str | None, kind: str, _parent: object) -> bool:
        return kind != "table" or name in metadata.tables

    def compare(connection: Connection) -> list[object]:
        options = {"include_name": ours, "version_table": version_table}
        return list(
            compare_metadata(MigrationContext.configure(connection, opts=options), metadata)
        )

    async def read() -> list[object]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(read())
