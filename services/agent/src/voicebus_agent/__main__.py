"""`voicebus-agent`: run the agent worker."""

from voicebus_agent.app import build
from voicebus_agent.settings import AgentSettings
from voicebus_runtime.service import run
from voicebus_runtime.settings import BusSettings


def main() -> None:
    bus = BusSettings()
    app, _ = build(settings=AgentSettings(), bus=bus)
    run(app, bus=bus)


if __name__ == "__main__":
    main()
