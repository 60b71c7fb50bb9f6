"""Where analytics keeps its records, and the `migrate` command that prepares them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from voicebus_analytics.settings import Settings
from voicebus_contracts.agents import LanguageModel
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


LLM_VARIABLES = (
    "VOICEBUS_ANALYTICS_LLM_MODEL",
    "VOICEBUS_ANALYTICS_LLM_BASE_URL",
    "VOICEBUS_ANALYTICS_LLM_API_KEY",
    "OPENAI_API_KEY",
)


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in LLM_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_without_a_model_calls_are_concluded_offline(no_model: pytest.MonkeyPatch) -> None:
    assert Settings().service_model() is None


def test_a_model_on_openais_endpoint_without_a_key_is_refused_naming_the_variables(
    no_model: pytest.MonkeyPatch,
) -> None:
    no_model.setenv("VOICEBUS_ANALYTICS_LLM_MODEL", "gpt-4o-mini")

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "VOICEBUS_ANALYTICS_LLM_MODEL" in str(refused.value)
    assert "OPENAI_API_KEY" in str(refused.value)


def test_openais_key_serves_analytics_model(no_model: pytest.MonkeyPatch) -> None:
    no_model.setenv("VOICEBUS_ANALYTICS_LLM_MODEL", "gpt-4o-mini")
    no_model.setenv("OPENAI_API_KEY", "sk-openai")

    settings = Settings()

    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-openai"
    assert settings.service_model() == LanguageModel(model="gpt-4o-mini", temperature=0.0)


def test_a_model_of_another_endpoint_needs_no_key(no_model: pytest.MonkeyPatch) -> None:
    no_model.setenv("VOICEBUS_ANALYTICS_LLM_MODEL", "llama3.2")
    no_model.setenv("VOICEBUS_ANALYTICS_LLM_BASE_URL", "http://ollama:11434/v1")

    assert Settings().service_model() == LanguageModel(
        model="llama3.2", base_url="http://ollama:11434/v1", temperature=0.0
    )


def test_migrate_creates_the_sqlite_database_and_its_tables(tmp_path: Path) -> None:
    env = {**os.environ, "VOICEBUS_DATA_DIR": str(tmp_path / "data")}
    env.pop("VOICEBUS_DATABASE_URL", None)

    subprocess.run(
        [sys.executable, "-m", "voicebus_analytics", "migrate"], env=env, check=True, timeout=60
    )

    with sqlite3.connect(tmp_path / "data" / "voicebus.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert {"calls", "turns", "reply_chunks", "alembic_version"} <= tables
