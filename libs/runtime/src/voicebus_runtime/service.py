"""Running a worker service: provision topics, start the broker, beat, measure its consumers'
lag, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from faststream import FastStream
from faststream.kafka import KafkaBroker

from voicebus_contracts.topics import ALL_TOPICS, Topic
from voicebus_runtime.bus import ensure_topics
from voicebus_runtime.heartbeat import Heartbeat
from voicebus_runtime.logs import configure_logging
from voicebus_runtime.metrics import ConsumerLag
from voicebus_runtime.settings import BusSettings


def worker_app(
    broker: KafkaBroker,
    *,
    service: str,
    bus: BusSettings,
    topics: Iterable[Topic] = ALL_TOPICS,
) -> FastStream:
    """A FastStream app for `broker` that provisions `topics` first, and beats and measures
    its consumers' lag while it runs."""
    app = FastStream(broker, logger=logging.getLogger(__name__))
    heartbeat = Heartbeat(
        broker, service=service, instance=bus.instance_id, interval_s=bus.heartbeat_interval_s
    )
    lag = ConsumerLag(broker, interval_s=bus.consumer_lag_interval_s)
    wanted = tuple(topics)

    @app.on_startup
    async def provision() -> None:
        await ensure_topics(
            bus.kafka_bootstrap, wanted, replication_factor=bus.kafka_replication_factor
        )

    @app.after_startup
    async def start_reporting() -> None:
        heartbeat.start()
        lag.start()

    @app.on_shutdown
    async def stop_reporting() -> None:
        await lag.stop()
        await heartbeat.stop()

    return app


def run(app: FastStream, *, bus: BusSettings) -> None:
    """Run `app` until SIGINT or SIGTERM, logging as main set up (`observe`), or as `bus` says
    if it did not."""
    if not logging.getLogger().handlers:
        configure_logging(bus.log_level, json=bus.log_format == "json", redact_pii=bus.redact_pii)
    asyncio.run(app.run())
