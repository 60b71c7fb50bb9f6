"""Outbound calls we placed, remembered until the carrier asks what the answered call is for.

The carrier fetches the call's TwiML from our voice webhook with the placement's id in the URL
(signed, so it cannot be altered); the placement says which agent talks and with what variables.
Kept in Redis so whichever gateway replica the carrier reaches can answer.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from voicebus_contracts.events import MAX_VARIABLES

PLACEMENT_TTL_S = 24 * 3600
"""Longer than any call takes to be answered and to run."""


class Placement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str
    variables: dict[str, str] = Field(default_factory=dict, max_length=MAX_VARIABLES)


def _key(placement_id: str) -> str:
    return f"voicebus:placement:{placement_id}"


class Placements:
    """Redis-backed placements of outbound calls."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def remember(self, placement: Placement) -> str:
        """Store `placement`; its id, for the carrier's webhook URL."""
        placement_id = uuid.uuid4().hex
        await self._redis.set(_key(placement_id), placement.model_dump_json(), ex=PLACEMENT_TTL_S)
        return placement_id

    async def recall(self, placement_id: str) -> Placement | None:
        raw = await self._redis.get(_key(placement_id))
        return None if raw is None else Placement.model_validate_json(raw)
