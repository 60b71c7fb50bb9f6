"""One log format for every service; the local supervisor prefixes each line with the service."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        force=True,
    )
    # One line per Kafka message at INFO would drown the call's story.
    logging.getLogger("faststream.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
