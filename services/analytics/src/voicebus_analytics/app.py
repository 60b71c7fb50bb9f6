"""The analytics service: Kafka consumers that record calls, and the HTTP API that reads them.

Both run in one process under one event loop: uvicorn serves the API, whose lifespan provisions
the topics, starts the consumers and the heartbeat, and, once the agent catalog is read, takes
up the follow-ups of calls that a stop or a crash cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from faststream.kafka import KafkaBroker

from voicebus_analytics.catalog import AgentCatalog
from voicebus_analytics.follow_up import FollowUp
from voicebus_analytics.model_judge import ModelJudge
from voicebus_analytics.ports import CallFilter, CallJudge, CallStore
from voicebus_analytics.recorder import RecordedEvent, Recorder
from voicebus_analytics.recordings import CallId, recordings_router
from voicebus_analytics.settings import Settings
from voicebus_analytics.sql_store import SqlCallStore
from voicebus_analytics.views import (
    CallDetail,
    CallExport,
    CallStatus,
    CallSummary,
    Summary,
    WebhookDelivery,
)
from voicebus_analytics.webhooks import Webhooks
from voicebus_contracts import Direction, Envelope, Transport
from voicebus_contracts.agents import AGENT_ID_PATTERN, LanguageModel
from voicebus_contracts.topics import ALL_TOPICS, CALLS, PLAYBACK, REPLIES, TOOLS, TRANSCRIPTS
from voicebus_runtime.bus import consumer_options, ensure_topics, make_broker
from voicebus_runtime.heartbeat import Heartbeat
from voicebus_runtime.metrics import ConsumerLag, exposition
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import create_engine, redacted, unreachable

log = logging.getLogger(__name__)

SERVICE = "analytics"
GROUP = "analytics"
MAX_PAGE = 200
MAX_SEARCH_CHARS = 200
SEARCH_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""Words to search for: any text but control characters (which PostgreSQL cannot even compare,
in NUL's case)."""
CSV_FILENAME = "calls.csv"
CSV_CHUNK_CHARS = 16 * 1024
CATALOG_READ_TIMEOUT_S = 30.0
"""How long the follow-ups cut short by a stop wait at start for the agent catalog to be read."""

RECORDED_TOPICS = (CALLS, TRANSCRIPTS, REPLIES, PLAYBACK, TOOLS)
STORE_RETRY_FIRST_S = 0.5
STORE_RETRY_MAX_S = 15.0
"""While the database is unreachable, an event is tried again after 0.5 s, 1 s, 2 s... and at
most this far apart."""


def create_broker(
    recorder: Recorder, *, bus: BusSettings, agents: AgentCatalog | None = None
) -> KafkaBroker:
    """A broker that feeds every event analytics records to `recorder`, and keeps `agents` up
    with the agent catalog.

    One subscriber for all the topics: one member in the consumer group, so starting the
    service is one group join, not a rebalance per topic.
    """
    broker = make_broker(bus.kafka_bootstrap, client_id=f"{SERVICE}-{bus.instance_id}")

    @broker.subscriber(*(t.name for t in RECORDED_TOPICS), **consumer_options(GROUP))
    async def on_call_events(env: Envelope[RecordedEvent]) -> None:
        await record_patiently(recorder, env)

    if agents is not None:
        agents.follow(broker)
    return broker


async def record_patiently(recorder: Recorder, env: Envelope[RecordedEvent]) -> None:
    """Record `env`, waiting out a database that cannot be reached: the event is tried again,
    later and later, until it is recorded, and meanwhile nothing after it is consumed or
    committed, so analytics catches up once the database is back and loses nothing. An event
    that fails for another reason is the event's fault: it goes to the dead letters."""
    wait_s = STORE_RETRY_FIRST_S
    while True:
        try:
            await recorder.record(env)
        except Exception as failed:
            if not unreachable(failed):
                raise
            log.warning(
                "call %s: the database cannot be reached (%s: %s); %s event %s waits, "
                "tried again in %.1f s",
                env.call_id,
                type(failed).__name__,
                failed,
                env.event.type,
                env.event_id,
                wait_s,
            )
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, STORE_RETRY_MAX_S)
        else:
            if wait_s > STORE_RETRY_FIRST_S:
                log.info("the database is back: recording again")
            return


def _store(request: Request) -> CallStore:
    return cast(CallStore, request.app.state.store)


Store = Annotated[CallStore, Depends(_store)]


def _matching(
    *,
    agent_id: Annotated[str | None, Query(pattern=AGENT_ID_PATTERN)] = None,
    status: CallStatus | None = None,
    transport: Transport | None = None,
    direction: Direction | None = None,
    started_after: Annotated[
        datetime | None,
        Query(description="Calls started at or after this instant (ISO 8601; UTC if no offset)"),
    ] = None,
    started_before: Annotated[
        datetime | None,
        Query(description="Calls started before this instant (ISO 8601; UTC if no offset)"),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_SEARCH_CHARS,
            pattern=SEARCH_PATTERN,
            description="Calls in which either side said this (any letter case)",
        ),
    ] = None,
) -> CallFilter:
    """The calls a request asks about, from its query."""
    after, before = _utc(started_after), _utc(started_before)
    if after is not None and before is not None and after >= before:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "started_before"),
                    "msg": "started_before must be later than started_after",
                    "input": before.isoformat(),
                }
            ]
        )
    return CallFilter(
        agent_id=agent_id,
        status=status,
        transport=transport,
        direction=direction,
        started_after=after,
        started_before=before,
        text=q,
    )


def _utc(instant: datetime | None) -> datetime | None:
    """`instant`, taken as UTC when it says no offset."""
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)


Matching = Annotated[CallFilter, Depends(_matching)]

calls = APIRouter(prefix="/api/calls", tags=["calls"])


@calls.get("")
async def list_calls(
    store: Store,
    matching: Matching,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CallSummary]:
    """Calls, newest first: those matching every filter given."""
    return await store.calls(matching, limit=limit, offset=offset)


@calls.get("/{call_id}", responses={404: {"description": "No call with this id was recorded"}})
async def get_call(call_id: CallId, store: Store) -> CallDetail:
    """One call with its turns in conversation order, each agent turn's latency and its
    waterfall, the replies the caller cut off, the tools its agent called and, once it is
    concluded, its post-call results."""
    call = await store.call(call_id)
    if call is None:
        raise HTTPException(status_code=404, detail=f"no call {call_id!r} was recorded")
    return call


@calls.get(
    "/{call_id}/webhooks", responses={404: {"description": "No call with this id was recorded"}}
)
async def list_webhook_deliveries(call_id: CallId, store: Store) -> list[WebhookDelivery]:
    """Each attempt to tell the call's agent's webhook that the call ended, in order."""
    if await store.call(call_id) is None:
        raise HTTPException(status_code=404, detail=f"no call {call_id!r} was recorded")
    return await store.deliveries(call_id)


exports = APIRouter(tags=["calls"])


@exports.get(
    "/api/calls.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per call"}},
)
async def export_calls(store: Store, matching: Matching) -> StreamingResponse:
    """Every call matching the filters, newest first, as CSV: its record, its number of turns,
    of tool calls, of interruptions and its median voice-to-voice latency."""
    return StreamingResponse(
        _csv(store.export(matching)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{CSV_FILENAME}"'},
    )


async def _csv(rows: AsyncIterator[CallExport]) -> AsyncIterator[str]:
    """`rows` as CSV lines: a header naming the fields, then a line per row, sent a few KiB at
    a time."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CallExport.model_fields))
    writer.writeheader()
    async for row in rows:
        writer.writerow(row.model_dump(mode="json"))
        if buffer.tell() >= CSV_CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


figures = APIRouter(prefix="/api/analytics", tags=["analytics"])


@figures.get("/summary")
async def summarize_calls(store: Store, matching: Matching) -> Summary:
    """Latency percentiles per stage, calls per day, durations, the interruption rate and the
    outcomes of the calls matching the filters (of the newest of them when too many match: see
    `capped`)."""
    return await store.summary(matching)


@dataclass(frozen=True)
class Service:
    """The analytics service: serve `api` (uvicorn) to run it all."""

    api: FastAPI
    """The HTTP API; its lifespan runs the consumers."""
    broker: KafkaBroker
    follow_up: FollowUp


def create_service(
    store: CallStore,
    *,
    bus: BusSettings,
    recordings: Path | None = None,
    webhooks: Webhooks | None = None,
    judge: CallJudge | None = None,
    service_model: LanguageModel | None = None,
) -> Service:
    """The API over `store`; its lifespan provisions the topics, consumes into `store`, beats.

    Each ended call's post-call results are drawn for its agent, as the catalog announces it: by
    the agent's model or else `service_model` through `judge`, offline without; then `webhooks`
    (default: Webhooks' defaults) tell the agent's webhook. With `bus.redact_pii`, what was said
    and the results are recorded redacted.
    """
    agents = AgentCatalog()
    webhooks = Webhooks(store=store) if webhooks is None else webhooks
    follow_up = FollowUp(
        store=store,
        agents=agents,
        listener=webhooks,
        judge=judge,
        service_model=service_model,
        redact_pii=bus.redact_pii,
    )
    recorder = Recorder(store=store, follow_up=follow_up, redact_pii=bus.redact_pii)
    broker = create_broker(recorder, bus=bus, agents=agents)
    heartbeat = Heartbeat(
        broker, service=SERVICE, instance=bus.instance_id, interval_s=bus.heartbeat_interval_s
    )
    lag = ConsumerLag(broker, interval_s=bus.consumer_lag_interval_s)

    async def resume_follow_ups() -> None:
        await agents.read_to_end(bus.kafka_bootstrap, timeout_s=CATALOG_READ_TIMEOUT_S)
        try:
            await follow_up.resume()
        except Exception:
            log.exception("the follow-ups cut short were not taken up")

    @asynccontextmanager
    async def run_consumers(_: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(
            bus.kafka_bootstrap, ALL_TOPICS, replication_factor=bus.kafka_replication_factor
        )
        follow_up.hold()
        await broker.start()
        heartbeat.start()
        lag.start()
        resuming = asyncio.create_task(resume_follow_ups(), name="resume-follow-ups")
        try:
            yield
        finally:
            resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resuming
            await lag.stop()
            await heartbeat.stop()
            await broker.stop()
            await follow_up.aclose()
            await webhooks.aclose()

    api = FastAPI(title="voicebus analytics", lifespan=run_consumers)
    api.state.store = store

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    api.include_router(calls)
    api.include_router(exports)
    api.include_router(figures)
    if recordings is not None:
        api.include_router(recordings_router(recordings))
    return Service(api=api, broker=broker, follow_up=follow_up)


async def serve(*, settings: Settings, bus: BusSettings) -> None:
    """Run the service until SIGINT or SIGTERM."""
    log.info("recording calls in %s", redacted(settings.database_url))
    engine = create_engine(settings.database_url)
    key = settings.llm_api_key
    judge = ModelJudge(
        service_base_url=settings.llm_base_url,
        service_api_key=None if key is None else key.get_secret_value(),
        timeout_s=settings.llm_timeout_s,
    )
    try:
        store = SqlCallStore(engine=engine)
        webhooks = Webhooks(
            store=store,
            attempts=settings.webhook_attempts,
            backoff_s=settings.webhook_backoff_s,
            timeout_s=settings.webhook_timeout_s,
        )
        service = create_service(
            store,
            bus=bus,
            recordings=settings.recordings,
            webhooks=webhooks,
            judge=judge,
            service_model=settings.service_model(),
        )
        server = uvicorn.Server(
            uvicorn.Config(service.api, host=settings.host, port=settings.port, log_config=None)
        )
        await server.serve()
    finally:
        await judge.aclose()
        await engine.dispose()
    if not server.started:
        raise SystemExit("analytics did not start")
