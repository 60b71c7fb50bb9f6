"""`voicebus-analytics [serve]` runs the service; `voicebus-analytics migrate` migrates its DB."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.settings import Settings
from voicebus_runtime.logs import configure_logging
from voicebus_runtime.settings import BusSettings
from voicebus_sql.engine import redacted

log = logging.getLogger("voicebus_analytics")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="voicebus-analytics", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "migrate"],
        default="serve",
        help="serve: consume the bus and serve the API (default); migrate: alembic upgrade head",
    )
    command = parser.parse_args(argv).command
    settings, bus = Settings(), BusSettings()
    configure_logging(bus.log_level)
    if command == "migrate":
        log.info("migrating %s to the latest schema", redacted(settings.database_url))
        MIGRATIONS.upgrade(settings.database_url)
        return
    from voicebus_analytics.app import serve  # noqa: PLC0415 - migrate needs no web stack

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings=settings, bus=bus))


if __name__ == "__main__":
    main()
