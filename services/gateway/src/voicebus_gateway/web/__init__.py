"""Web calls: browser audio over a WebSocket, the same pipeline as a phone call.

For the app: `app.include_router(web_routes(switchboard=..., settings=..., tokens=...))`
(`tokens`: None where keys are not required).
"""

from voicebus_gateway.web.call import web_routes

__all__ = ["web_routes"]
