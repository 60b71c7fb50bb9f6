"""The analytics service: Kafka consumers that record calls, and the HTTP API that reads them.

Both run in one process under one event loop: uvicorn serves the API, whose lifespan provisions
the topics, starts the consumers and the heartbeat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, cast

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from faststream.kafka import KafkaBroker

from voicebus_analytics.ports import CallStore
from voicebus_analytics.recorder import RecordedEvent, Recorder
from voicebus_analytics.settings import Settings
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_analytics.views import CallDetail, CallSummary
from voicebus_contracts import Envelope
from voicebus_contracts.topics import ALL_TOPICS, CALLS, PLAYBACK, REPLIES, TOOLS, TRANSCRIPTS
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker
from voicebus_runtime.heartbeat import Heartbeat
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine, redacted

log = logging.getLogger(__name__)

SERVICE = "analytics"
GROUP = "analytics"
MAX_PAGE = 200

RECORDED_TOPICS = (CALLS, TRANSCRIPTS, REPLIES, PLAYBACK, TOOLS)


def create_broker(recorder: Recorder, *, bus: BusSettings) -> KafkaBroker:
    """A broker that feeds every event analytics records to `recorder`.

    One subscriber for all the topics: one member in the consumer group, so starting the
    service is one group join, not a rebalance per topic.
    """
    broker = make_broker(bus.kafka_bootstrap, client_id=f"{SERVICE}-{bus.instance_id}")

    @broker.subscriber(*(t.name for t in RECORDED_TOPICS), **consumer_options(GROUP))
    async def on_call_events(env: Envelope[RecordedEvent]) -> None:
        try:
            await recorder.record(env)
        except Exception:
            log.exception(
                "call %s: %s event %s not recorded, skipped",
                env.call_id,
                env.event.type,
                env.event_id,
            )

    return broker


def _store(request: Request) -> CallStore:
    return cast(CallStore, request.app.state.store)


Store = Annotated[CallStore, Depends(_store)]

calls = APIRouter(prefix="/api/calls", tags=["calls"])


@calls.get("")
async def list_calls(
    store: Store,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CallSummary]:
    """Calls, newest first."""
    return await store.calls(limit=limit, offset=offset)


@calls.get("/{call_id}", responses={404: {"description": "No call with this id was recorded"}})
async def get_call(call_id: str, store: Store) -> CallDetail:
    """One call with its turns in conversation order, and each agent turn's latency."""
    call = await store.call(call_id)
    if call is None:
        raise HTTPException(status_code=404, detail=f"no call {call_id!r} was recorded")
    return call


@dataclass(frozen=True)
class Service:
    """The analytics service: serve `api` (uvicorn) to run it all."""

    api: FastAPI
    """The HTTP API; its lifespan runs the consumers."""
    broker: KafkaBroker


def create_service(store: CallStore, *, bus: BusSettings) -> Service:
    """The API over `store`; its lifespan provisions the topics, consumes into `store`, beats."""
    broker = create_broker(Recorder(store=store), bus=bus)
    heartbeat = Heartbeat(
        broker, service=SERVICE, instance=bus.instance_id, interval_s=bus.heartbeat_interval_s
    )

    @asynccontextmanager
    async def run_consumers(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(
            bus.kafka_bootstrap, ALL_TOPICS, replication_factor=bus.kafka_replication_factor
        )
        await broker.start()
        heartbeat.start()
        try:
            yield
        finally:
            await heartbeat.stop()
            await broker.stop()

    api = FastAPI(title="voicebus analytics", lifespan=run_consumers)
    api.state.store = store
    api.include_router(calls)
    return Service(api=api, broker=broker)


async def serve(*, settings: Settings, bus: BusSettings) -> None:
    """Run the service until SIGINT or SIGTERM."""
    log.info("recording calls in %s", redacted(settings.database_url))
    engine = create_engine(settings.database_url)
    try:
        service = create_service(SqlCallStore(engine=engine), bus=bus)
        server = uvicorn.Server(
            uvicorn.Config(service.api, host=settings.host, port=settings.port, log_config=None)
        )
        await server.serve()
    finally:
        await engine.dispose()
    if not server.started:
        raise SystemExit("analytics did not start")
