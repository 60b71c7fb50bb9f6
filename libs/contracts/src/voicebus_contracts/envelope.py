"""The one envelope every event travels in."""

from __future__ import annotations

import time
from typing import Generic, TypeVar, cast
from uuid import UUID, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts.events import Event
from voicebus_contracts.stamps import StageStamps

EventT = TypeVar("EventT")
E = TypeVar("E", bound=Event)


class Envelope(BaseModel, Generic[EventT]):
    """Identity, origin and timing of one event.

    `event_id` makes handling idempotent: a consumer that sees an id twice acts once.
    `call_id` is also the Kafka message key, so one call's events stay ordered on one partition.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    event_id: UUID = Field(default_factory=uuid4)
    call_id: str = Field(min_length=1, max_length=128)
    schema_version: int = Field(ge=1)
    producer: str
    created_at: float = Field(default_factory=time.time)
    """Wall-clock creation time, epoch seconds."""
    stamps: StageStamps = StageStamps()
    event: EventT


def derived_id(cause: UUID, label: str) -> UUID:
    """A deterministic event id for what `cause` leads to.

    A handler that sees `cause` again (at-least-once delivery) emits the same id again, so the
    consumers downstream, which act on an id once, see one effect.
    """
    return uuid5(cause, label)


def envelope(
    event: E,
    *,
    call_id: str,
    producer: str,
    stamps: StageStamps | None = None,
    event_id: UUID | None = None,
) -> Envelope[E]:
    """Wrap `event` for the bus, carrying the stage stamps of the turn it belongs to."""
    typed = cast("type[Envelope[E]]", Envelope.__class_getitem__(type(event)))
    return typed(
        event_id=event_id or uuid4(),
        call_id=call_id,
        schema_version=event.schema_version,
        producer=producer,
        stamps=stamps or StageStamps(),
        event=event,
    )
