"""The Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, inspect, text

from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.tables import Base
from voicebus_sql.engine import create_engine
from voicebus_sql.migrations import differences

T = TypeVar("T")

TABLES = {"calls", "turns", "reply_chunks", "webhook_deliveries", "tool_calls"}
ANSWERS_AND_WORKFLOWS = {"answered_by", "workflow_node", "variables", "workflow_at"}
"""The columns of `calls` that revision 0002 adds."""
POST_CALL = {"summary", "extraction", "succeeded", "success_reason", "concluded_at"}
"""The columns of `calls` that revision 0003 adds."""
DIRECTION_AND_NOTIFIED = {"direction", "notified_at"}
"""The columns of `calls` that revision 0004 adds."""


def on_database(url: str, work: Callable[[Connection], T]) -> T:
    """`work` done on a connection to `url`, committed."""

    async def run() -> T:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tables_in(url: str) -> set[str]:
    return on_database(url, lambda c: set(inspect(c).get_table_names()))


def columns_of_calls(url: str) -> set[str]:
    return on_database(
        url, lambda c: {column["name"] for column in inspect(c).get_columns("calls")}
    )


def test_upgrade_creates_the_tables_and_downgrade_removes_them(empty_database_url: str) -> None:
    MIGRATIONS.upgrade(empty_database_url)
    assert tables_in(empty_database_url) >= TABLES

    MIGRATIONS.downgrade(empty_database_url)
    assert not TABLES & tables_in(empty_database_url)


def test_the_migrated_schema_is_the_one_the_models_describe(database_url: str) -> None:
    assert differences(database_url, Base.metadata) == []


def a_completed_call_with_a_turn(connection: Connection) -> None:
    connection.execute(text("INSERT INTO calls (call_id, status) VALUES ('c1', 'completed')"))
    connection.execute(
        text(
            "INSERT INTO turns (call_id, role, turn_id, text, created_at)"
            " VALUES ('c1', 'user', 'c1-t1', 'Hello?', '2025-06-15 15:06:40+00:00')"
        )
    )


def calls_and_turns(connection: Connection) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in connection.execute(
            text(
                "SELECT calls.call_id, calls.status, turns.turn_id"
                " FROM calls JOIN turns ON turns.call_id = calls.call_id"
            )
        )
    ]


def test_0002_adds_who_answered_and_the_workflow_to_calls_and_takes_them_back(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    MIGRATIONS.upgrade(url, "0001")
    try:
        on_database(url, a_completed_call_with_a_turn)

        MIGRATIONS.upgrade(url, "0002")
        assert columns_of_calls(url) >= ANSWERS_AND_WORKFLOWS
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]

        MIGRATIONS.downgrade(url, "0001")
        assert not ANSWERS_AND_WORKFLOWS & columns_of_calls(url)
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]
    finally:
        MIGRATIONS.downgrade(url)


def test_0003_adds_the_post_call_results_and_the_webhook_log_and_takes_them_back(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    MIGRATIONS.upgrade(url, "0002")
    try:
        on_database(url, a_completed_call_with_a_turn)

        MIGRATIONS.upgrade(url, "0003")
        assert columns_of_calls(url) >= POST_CALL | ANSWERS_AND_WORKFLOWS
        assert "webhook_deliveries" in tables_in(url)
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]

        MIGRATIONS.downgrade(url, "0002")
        assert not POST_CALL & columns_of_calls(url)
        assert columns_of_calls(url) >= ANSWERS_AND_WORKFLOWS
        assert "webhook_deliveries" not in tables_in(url)
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]
    finally:
        MIGRATIONS.downgrade(url)


def a_concluded_call(connection: Connection) -> None:
    connection.execute(
        text(
            "UPDATE calls SET summary = 'Caller: Hello?',"
            " concluded_at = '2025-06-15 15:07:00+00:00' WHERE call_id = 'c1'"
        )
    )
    connection.execute(text("INSERT INTO calls (call_id, status) VALUES ('c2', 'in-progress')"))


def notified(connection: Connection) -> list[tuple[object, ...]]:
    return [
        (call_id, at is not None)
        for call_id, at in connection.execute(
            text("SELECT call_id, notified_at FROM calls ORDER BY call_id")
        )
    ]


def test_0004_adds_tool_calls_and_directions_and_takes_them_back(empty_database_url: str) -> None:
    url = empty_database_url
    MIGRATIONS.upgrade(url, "0003")
    try:
        on_database(url, a_completed_call_with_a_turn)
        on_database(url, a_concluded_call)

        MIGRATIONS.upgrade(url, "0004")
        assert columns_of_calls(url) >= DIRECTION_AND_NOTIFIED | POST_CALL
        assert "tool_calls" in tables_in(url)
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]
        # The concluded call's webhook was told when it was concluded, not to be told again.
        assert on_database(url, notified) == [("c1", True), ("c2", False)]

        MIGRATIONS.downgrade(url, "0003")
        assert not DIRECTION_AND_NOTIFIED & columns_of_calls(url)
        assert columns_of_calls(url) >= POST_CALL
        assert "tool_calls" not in tables_in(url)
        assert on_database(url, calls_and_turns) == [("c1", "completed", "c1-t1")]
    finally:
        MIGRATIONS.downgrade(url)
