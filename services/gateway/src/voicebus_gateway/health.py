"""What /healthz reports: every required service has beaten recently, or which have not."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from voicebus_runtime.heartbeat import LivenessBoard


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    services: dict[str, Literal["up"]] | None = None
    missing: list[str] | None = None
    stopping: bool | None = None
    """True while this replica finishes its calls before it stops: it takes no new one."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_health(
    board: LivenessBoard, now: float | None = None, *, taking_calls: bool = True
) -> Health:
    if not taking_calls:
        return Health(status="unavailable", stopping=True)
    missing = board.missing(now)
    if missing:
        return Health(status="unavailable", missing=missing)
    return Health(status="ok", services=dict.fromkeys(board.expected, "up"))
