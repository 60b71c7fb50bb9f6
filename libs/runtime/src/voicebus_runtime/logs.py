"""One log format for every service; the local supervisor prefixes each line with the service."""

from __future__ import annotations

import logging
import sys


class _TopicsAreProvisioned(logging.Filter):
    """FastStream warns that it will not create topics; ours are created before it subscribes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Auto create topics is disabled")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        force=True,
    )
    # One line per Kafka message at INFO would drown the call's story.
    logging.getLogger("faststream.access").setLevel(logging.WARNING)
    logging.getLogger("faststream.access.kafka").addFilter(_TopicsAreProvisioned())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
