"""Call control for any service: ask the gateway replica holding a call to act on it."""

from __future__ import annotations

from uuid import UUID

from faststream.kafka import KafkaBroker

from voicebus_contracts import CallCommand, derived_id, envelope
from voicebus_contracts.topics import gateway_topic
from voicebus_runtime.bus import publish
from voicebus_runtime.registry import CallRegistry


class CallControl:
    """Sends call commands (hang up, transfer, DTMF, clear, and barge-in's pause, resume and
    cancel) to the gateway replica holding the call."""

    def __init__(self, *, broker: KafkaBroker, registry: CallRegistry, producer: str) -> None:
        self._broker = broker
        self._registry = registry
        self._producer = producer

    async def send(self, call_id: str, command: CallCommand, *, cause: UUID | None = None) -> bool:
        """Publish `command` for `call_id`; False when the call is not live anywhere.

        With the id of the event that `cause`d it, the command's id is derived from it, so a
        redelivered cause sends the same command again, not another one.
        """
        route = await self._registry.lookup(call_id)
        if route is None:
            return False
        event_id = None if cause is None else derived_id(cause, command.type)
        env = envelope(command, call_id=call_id, producer=self._producer, event_id=event_id)
        await publish(self._broker, gateway_topic(route.gateway_id), env)
        return True
