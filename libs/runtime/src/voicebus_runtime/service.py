"""Running a worker service: provision topics, start the broker, beat, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from faststream import FastStream
from faststream.kafka import KafkaBroker

from voicebus_contracts.topics import ALL_TOPICS, Topic
from voicebus_runtime.bus import ensure_topics
from voicebus_runtime.heartbeat import Heartbeat
from voicebus_runtime.logs import configure_logging
from voicebus_runtime.settings import BusSettings


def worker_app(
    broker: KafkaBroker,
    *,
    service: str,
    bus: BusSettings,
    topics: Iterable[Topic] = ALL_TOPICS,
) -> FastStream:
    """A FastStream app for `broker` that provisions `topics` first and beats while it runs."""
    app = FastStream(broker)
    heartbeat = Heartbeat(
        broker, service=service, instance=bus.instance_id, interval_s=bus.heartbeat_interval_s
    )
    wanted = tuple(topics)

    @app.on_startup
    async def provision() -> None:
        await ensure_topics(
            bus.kafka_bootstrap, wanted, replication_factor=bus.kafka_replication_factor
        )

    @app.after_startup
    async def start_beating() -> None:
        heartbeat.start()

    @app.on_shutdown
    async def stop_beating() -> None:
        await heartbeat.stop()

    return app


def run(app: FastStream, *, bus: BusSettings) -> None:
    """Run `app` until SIGINT or SIGTERM."""
    configure_logging(bus.log_level)
    asyncio.run(app.run())
