"""Run the media worker: `voicebus-media` (or `python -m voicebus_media`)."""

from __future__ import annotations

from voicebus_media.app import build_broker
from voicebus_media.settings import MediaSettings
from voicebus_media.silero import SileroVad
from voicebus_runtime.observability import observe
from voicebus_runtime.redis import connect as connect_redis
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.service import run, worker_app
from voicebus_runtime.settings import BusSettings


def main() -> None:
    bus = BusSettings()
    observe("media", bus)
    redis = connect_redis(bus.redis_url)
    broker, _ = build_broker(
        bus=bus, settings=MediaSettings(), vad=SileroVad(), registry=CallRegistry(redis)
    )
    app = worker_app(broker, service="media", bus=bus)
    app.after_shutdown(redis.aclose)
    run(app, bus=bus)


if __name__ == "__main__":
    main()
