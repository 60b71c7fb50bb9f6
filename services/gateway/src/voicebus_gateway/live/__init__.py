"""The live feed: what happens in calls, as it happens, for the dashboard (and any HTTP client).

For the app: `LiveFeed(redact_pii=bus.redact_pii)`, `gateway.live.tell(env)` for every event
read about calls, and `app.include_router(live_routes(gateway.live))`.
"""

from voicebus_gateway.live.feed import LiveFeed
from voicebus_gateway.live.routes import live_routes
from voicebus_gateway.live.updates import CallNews

__all__ = ["CallNews", "LiveFeed", "live_routes"]
