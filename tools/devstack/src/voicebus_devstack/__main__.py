"""`voicebus-stack run`: start the whole product locally, with embedded infrastructure."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from voicebus_devstack.settings import StackSettings
from voicebus_devstack.supervisor import run_stack


def main() -> None:
    parser = argparse.ArgumentParser(prog="voicebus-stack", description=__doc__)
    parser.add_argument("command", choices=["run"], help="run: start everything, Ctrl-C stops it")
    parser.parse_args()
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="stack     | %(asctime)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll otherwise
    sys.exit(asyncio.run(run_stack(StackSettings())))


if __name__ == "__main__":
    main()
