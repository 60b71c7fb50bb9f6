"""Call routes cached in process: a reply's every sentence goes to the same gateway."""

from __future__ import annotations

from voicebus_contracts import CallRoute
from voicebus_tts.lru import Lru
from voicebus_tts.ports import CallRoutes


class CachedRoutes:
    """Reads each call's route from `registry` once; unknown calls are asked again next time."""

    def __init__(self, *, registry: CallRoutes, size: int) -> None:
        self._registry = registry
        self._routes: Lru[str, CallRoute] = Lru(size=size)

    async def lookup(self, call_id: str) -> CallRoute | None:
        route = self._routes.get(call_id)
        if route is None:
            route = await self._registry.lookup(call_id)
            if route is not None:
                self._routes.put(call_id, route)
        return route
