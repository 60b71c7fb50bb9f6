"""Connecting to the database: PostgreSQL in production, SQLite embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """`url` with the asyncio driver for its database when it names none (postgresql://...)."""
    scheme, separator, rest = url.partition("://")
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}{separator}{rest}"


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; for a SQLite file, its directory is created first."""
    engine = create_async_engine(async_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # SQLite enforces foreign keys only when asked, per connection; WAL lets the API read while
    # the consumers write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def redacted(url: str) -> str:
    """`url` fit for a log line: the password hidden."""
    return make_url(async_url(url)).render_as_string(hide_password=True)


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached now (down, restarting, cut off, out
    of connections, locked), so the same work will succeed later; not that the work is wrong."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | OSError | TimeoutError)
