"""A stand-in for the call control (`voicebus_runtime.CallControl`) in tests of what sends
commands to a call's gateway: it keeps every command, and says the call is live, or not."""

from __future__ import annotations

from uuid import UUID

from voicebus_contracts import CallCommand


class SentCommands:
    def __init__(self, *, live: bool = True) -> None:
        self.live = live
        self.sent: list[tuple[str, CallCommand]] = []

    async def send(self, call_id: str, command: CallCommand, *, cause: UUID | None = None) -> bool:
        self.sent.append((call_id, command))
        return self.live
