"""`voicebus-agent [serve]` runs the agent service (the worker and the agents API);
`voicebus-agent migrate` migrates the agent catalog's tables."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

from voicebus_agent.catalog.migrate import MIGRATIONS
from voicebus_agent.catalog.settings import CatalogSettings
from voicebus_agent.settings import AgentSettings
from voicebus_runtime.observability import observe
from voicebus_runtime.settings import BusSettings
from voicebus_sql.migrations import command_of


def main(argv: list[str] | None = None) -> None:
    command = command_of(argv, prog="voicebus-agent", description=__doc__)
    catalog, bus = CatalogSettings(), BusSettings()
    observe("agent", bus)
    if command == "migrate":
        MIGRATIONS.upgrade(catalog.database_url)
        return
    from voicebus_agent.app import create_service  # noqa: PLC0415 - migrate needs no worker

    service = create_service(settings=AgentSettings(), catalog_settings=catalog, bus=bus)
    config = uvicorn.Config(service, host=catalog.api_host, port=catalog.api_port, log_config=None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
