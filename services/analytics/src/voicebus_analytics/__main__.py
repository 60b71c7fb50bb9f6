"""`voicebus-analytics [serve]` runs the service; `voicebus-analytics migrate` migrates its DB."""

from __future__ import annotations

import asyncio
import contextlib

from voicebus_analytics.migrate import MIGRATIONS
from voicebus_analytics.settings import Settings
from voicebus_runtime.observability import observe
from voicebus_runtime.settings import BusSettings
from voicebus_sql.migrations import command_of


def main(argv: list[str] | None = None) -> None:
    command = command_of(argv, prog="voicebus-analytics", description=__doc__)
    settings, bus = Settings(), BusSettings()
    observe("analytics", bus)
    if command == "migrate":
        MIGRATIONS.upgrade(settings.database_url)
        return
    from voicebus_analytics.app import serve  # noqa: PLC0415 - migrate needs no web stack

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings=settings, bus=bus))


if __name__ == "__main__":
    main()
