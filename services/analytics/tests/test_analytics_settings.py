"""Where analytics keeps its records, and the `migrate` command that prepares them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from voicebus_analytics.settings import Settings
from voicebus_sql.engine import async_url


def test_the_database_defaults_to_sqlite_in_the_shared_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VOICEBUS_DATABASE_URL", raising=False)
    monkeypatch.setenv("VOICEBUS_DATA_DIR", str(tmp_path / "data"))

    assert Settings().database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'voicebus.db'}"


def test_a_database_url_is_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBUS_DATABASE_URL", "postgresql://analytics@db:5432/voicebus")

    assert Settings().database_url == "postgresql://analytics@db:5432/voicebus"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db/voicebus", "postgresql+asyncpg://u:p@db/voicebus"),
        ("postgres://u:p@db/voicebus", "postgresql+asyncpg://u:p@db/voicebus"),
        ("postgresql+asyncpg://u@db/voicebus", "postgresql+asyncpg://u@db/voicebus"),
        ("sqlite:///data/voicebus.db", "sqlite+aiosqlite:///data/voicebus.db"),
    ],
)
def test_urls_without_an_asyncio_driver_get_one(given: str, used: str) -> None:
    assert async_url(given) == used


def test_migrate_creates_the_sqlite_database_and_its_tables(tmp_path: Path) -> None:
    env = {**os.environ, "VOICEBUS_DATA_DIR": str(tmp_path / "data")}
    env.pop("VOICEBUS_DATABASE_URL", None)

    subprocess.run(
        [sys.executable, "-m", "voicebus_analytics", "migrate"], env=env, check=True, timeout=60
    )

    with sqlite3.connect(tmp_path / "data" / "voicebus.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert {"calls", "turns", "reply_chunks", "alembic_version"} <= tables
