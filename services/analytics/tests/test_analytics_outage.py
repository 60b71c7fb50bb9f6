"""PostgreSQL out of reach for a while under a running analytics (the link cut by a proxy, as a
database restart or a network partition would look): the events wait on the bus and every one
is recorded once the database is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url

from voicebus_analytics.app import create_broker
from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.recorder import Recorder
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_analytics.views import CallDetail
from voicebus_contracts.topics import ALL_TOPICS
from voicebus_devstack import polling
from voicebus_devstack.tcp_proxy import TcpProxy
from voicebus_runtime.bus import ensure_topics, publish
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine

from .conftest import MakeCall

WAIT_S = 60.0
"""Guards against a hung test only."""


@pytest.fixture
def migrated_postgres(postgres_url: str) -> Iterator[str]:
    MIGRATIONS.upgrade(postgres_url)
    yield postgres_url
    MIGRATIONS.downgrade(postgres_url)


@pytest.fixture
async def proxy(migrated_postgres: str) -> AsyncIterator[TcpProxy]:
    url = make_url(migrated_postgres)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
async def store(migrated_postgres: str, proxy: TcpProxy) -> AsyncIterator[SqlCallStore]:
    through_proxy = make_url(migrated_postgres).set(host="127.0.0.1", port=proxy.port)
    engine = create_engine(through_proxy.render_as_string(hide_password=False))
    yield SqlCallStore(engine=engine)
    await engine.dispose()


REPLY = "Let me check. It ships today."


def whole(call: CallDetail) -> bool:
    """Every event of the call recorded: they come from several topics, in no set order."""
    turns = call.turns
    return (
        call.ended_at is not None
        and [t.role for t in turns] == ["user", "agent"]
        and turns[1].text == REPLY
        and turns[1].latency is not None
    )


async def until(store: SqlCallStore, call_id: str, *, complete: bool) -> CallDetail:
    """The call's record once it exists (and, if `complete`, once it is whole)."""

    async def poll() -> CallDetail:
        while True:
            call = await store.call(call_id)
            if call is not None and (not complete or whole(call)):
                return call
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), WAIT_S)


async def test_events_wait_out_a_database_out_of_reach_and_none_is_lost(
    kafka_bootstrap: str,
    store: SqlCallStore,
    proxy: TcpProxy,
    a_call: MakeCall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ensure_topics(kafka_bootstrap, ALL_TOPICS)
    broker = create_broker(Recorder(store=store), bus=BusSettings(kafka_bootstrap=kafka_bootstrap))
    first, second = a_call("outage-1", at=1_750_000_000.0), a_call("outage-2", at=1_750_000_100.0)
    async with broker:
        await broker.start()
        await publish(broker, *first["started"])
        await until(store, "outage-1", complete=False)

        await proxy.cut()
        with caplog.at_level(logging.WARNING):
            for name in ("transcript", "chunk0", "chunk1", "chunk2", "playback", "ended"):
                await publish(broker, *first[name])
            for topic, env in second.values():
                await publish(broker, topic, env)
            await polling.until(
                lambda: "the database cannot be reached" in caplog.text,
                what="an event refused by the database",
                timeout_s=WAIT_S,
            )
        proxy.restore()

        calls = [await until(store, c, complete=True) for c in ("outage-1", "outage-2")]
    assert [call.end_reason for call in calls] == ["hangup", "hangup"]
