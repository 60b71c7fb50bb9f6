"""`voicebus-tts`: the text-to-speech worker."""

from __future__ import annotations

from voicebus_runtime.observability import observe
from voicebus_runtime.service import run
from voicebus_runtime.settings import BusSettings
from voicebus_tts.app import create_app
from voicebus_tts.settings import TtsSettings


def main() -> None:
    bus = BusSettings()
    observe("tts", bus)  # before the voice loads, so the provider choice is logged
    run(create_app(bus=bus, settings=TtsSettings()), bus=bus)


if __name__ == "__main__":
    main()
