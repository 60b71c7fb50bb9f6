"""`voicebus-stt`: run one STT worker."""

from __future__ import annotations

from voicebus_runtime.observability import observe
from voicebus_runtime.service import run
from voicebus_runtime.settings import BusSettings
from voicebus_stt.app import create_app
from voicebus_stt.settings import SttSettings


def main() -> None:
    bus = BusSettings()
    observe("stt", bus)  # before the model loads, so its progress is logged
    run(create_app(SttSettings(), bus=bus), bus=bus)


if __name__ == "__main__":
    main()
