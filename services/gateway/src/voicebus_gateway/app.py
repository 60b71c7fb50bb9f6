"""The gateway: one process serving the callers' sockets, the HTTP API and its ends of the bus.

Caller audio goes out on the bus as it arrives; reply audio and commands for this replica's calls
come back on its own topic. What is said and done in calls (transcripts, the agent's text, tools,
each call's start and end) is read from the shared topics by every replica, which shows its own
calls' clients what concerns them, and tells the live feed's watchers (the dashboard) everything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeGuard

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from voicebus_contracts import Envelope, GatewayEvent, ServiceHeartbeat
from voicebus_contracts.topics import (
    CALLS,
    HEARTBEATS,
    PARTIAL_TRANSCRIPTS,
    PLAYBACK,
    REPLIES,
    SPEECH,
    TOOLS,
    TRANSCRIPTS,
    gateway_topic,
)
from voicebus_gateway.api import agents_routes, analytics_routes, calls_routes, knowledge_routes
from voicebus_gateway.auth.access import Access
from voicebus_gateway.auth.limits import RateLimits
from voicebus_gateway.auth.logs import keep_secrets_out_of_logs
from voicebus_gateway.auth.origins import allow_cross_origin
from voicebus_gateway.auth.redis_keys import RedisApiKeys
from voicebus_gateway.auth.routes import web_call_token_routes
from voicebus_gateway.auth.web_calls import WebCallTokens
from voicebus_gateway.campaigns import Campaigns, campaign_routes
from voicebus_gateway.dashboard import mount_dashboard
from voicebus_gateway.health import check_health
from voicebus_gateway.live import CallNews, LiveFeed, live_routes
from voicebus_gateway.placements import Placements
from voicebus_gateway.ports import CallActivity
from voicebus_gateway.recording import Recordings
from voicebus_gateway.replicas import ReplicaLease
from voicebus_gateway.settings import GatewaySettings
from voicebus_gateway.switchboard import SERVICE, Switchboard
from voicebus_gateway.twilio.carrier import TwilioCarrier
from voicebus_gateway.twilio.media import MediaStreams
from voicebus_gateway.twilio.security import StreamTokens, WebhookVerifier
from voicebus_gateway.twilio.webhooks import twilio_routes
from voicebus_gateway.web import web_routes
from voicebus_runtime.agents import AgentDirectory
from voicebus_runtime.bus import consumer_options, make_broker
from voicebus_runtime.control import CallControl
from voicebus_runtime.heartbeat import Heartbeat, LivenessBoard
from voicebus_runtime.metrics import BROKERS, ConsumerLag, exposition
from voicebus_runtime.redis import connect as connect_redis
from voicebus_runtime.registry import CallRegistry
from voicebus_runtime.settings import BusSettings

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT_S = 5.0
DOCUMENT_UPLOAD_TIMEOUT_S = 300.0
REDIS_CONNECTIONS = 100
REDIS_WAIT_S = 5.0


def _is_activity(env: Envelope[CallNews]) -> TypeGuard[Envelope[CallActivity]]:
    """Whether `env` is something a call's own client is shown."""
    return isinstance(env.event, CallActivity)


class Gateway:
    """This replica: its calls, and its ends of the bus, Redis, Twilio and analytics."""

    def __init__(self, settings: GatewaySettings, bus: BusSettings) -> None:
        self.settings = settings
        self.gateway_id = settings.resolved_gateway_id(bus)
        self.broker = make_broker(
            bus.kafka_bootstrap, client_id=f"voicebus-gateway-{self.gateway_id}"
        )
        self.liveness = LivenessBoard(
            expected=settings.required_services, stale_after_s=settings.heartbeat_stale_s
        )
        self._heartbeat = Heartbeat(
            self.broker,
            service=SERVICE,
            instance=bus.instance_id,
            interval_s=bus.heartbeat_interval_s,
        )
        self._lag = ConsumerLag(self.broker, interval_s=bus.consumer_lag_interval_s)
        # Bursts (a campaign dialing, many callbacks at once) wait for a connection rather than
        # failing at once when the pool is exhausted.
        self.redis = connect_redis(
            bus.redis_url, max_connections=REDIS_CONNECTIONS, wait_s=REDIS_WAIT_S
        )
        registry = CallRegistry(self.redis)
        self.agents = AgentDirectory()
        self.agents.follow(self.broker)
        self.switchboard = Switchboard(
            gateway_id=self.gateway_id,
            broker=self.broker,
            registry=registry,
            playback_lead_s=settings.playback_lead_ms / 1000.0,
            bus_frame_ms=settings.bus_frame_ms,
            recordings=Recordings(directory=settings.recordings_dir, agents=self.agents),
            agents=self.agents,
        )
        self.control = CallControl(broker=self.broker, registry=registry, producer=SERVICE)
        self.placements = Placements(self.redis)
        self.carrier = TwilioCarrier(settings, self.placements, self.agents)
        self.campaigns = Campaigns(self.redis, self.carrier)
        self.lease = ReplicaLease(
            gateway_id=self.gateway_id,
            redis=self.redis,
            registry=registry,
            broker=self.broker,
            lease_s=settings.replica_lease_s,
        )
        self.access = Access(
            keys=RedisApiKeys(self.redis),
            limits=RateLimits(self.redis, per_minute=settings.rate_limit_per_minute),
            keys_required=settings.keys_required,
        )
        self.web_call_tokens = WebCallTokens(self.redis, ttl_s=settings.web_call_token_ttl_s)
        auth_token = settings.twilio_auth_token
        self.webhooks = (
            None if auth_token is None else WebhookVerifier(auth_token.get_secret_value())
        )
        self.media = MediaStreams(
            switchboard=self.switchboard,
            tokens=(
                None
                if auth_token is None
                else StreamTokens(auth_token.get_secret_value(), ttl_s=settings.stream_token_ttl_s)
            ),
            placements=self.placements,
            carrier=self.carrier,
        )
        self.analytics = httpx.AsyncClient(
            base_url=settings.analytics_url, timeout=UPSTREAM_TIMEOUT_S
        )
        self.agent_service = httpx.AsyncClient(
            base_url=settings.agents_url,
            # A knowledge document uploaded is read and embedded before the answer: minutes
            # for the largest PDFs on a small CPU.
            timeout=httpx.Timeout(UPSTREAM_TIMEOUT_S, read=DOCUMENT_UPLOAD_TIMEOUT_S),
        )
        self.live = LiveFeed(redact_pii=bus.redact_pii)
        fetch_wait = bus.kafka_fetch_max_wait_ms
        self.broker.subscriber(
            gateway_topic(self.gateway_id).name,
            **consumer_options(f"gateway-{self.gateway_id}", fetch_max_wait_ms=fetch_wait),
        )(self.on_gateway)
        # No consumer group: every replica sees every beat, and the news of every call.
        self.broker.subscriber(HEARTBEATS.name, **consumer_options(None))(self.on_heartbeats)
        # News is shown, not acted on: it is fetched in the background. Fetched at the voice
        # path's wait, the embedded broker's extra load cost the voice path (make bench, platform
        # overhead p50/p95: 43.6/58.7 ms, against 39.8/49.7 ms in the background).
        self.broker.subscriber(
            SPEECH.name,
            PARTIAL_TRANSCRIPTS.name,
            TRANSCRIPTS.name,
            REPLIES.name,
            CALLS.name,
            TOOLS.name,
            PLAYBACK.name,
            **consumer_options(None),
        )(self.on_call_news)

    async def start(self) -> None:
        log.info(
            "gateway %s: the API %s",
            self.gateway_id,
            "needs an API key"
            if self.access.keys_required
            else "is open (only this machine reaches it; VOICEBUS_AUTH=required asks for keys)",
        )
        await self.broker.start()
        self._lag.start()
        await self.lease.start()
        await self.campaigns.start()
        self._heartbeat.start()
        log.info("gateway %s up, reading %s", self.gateway_id, gateway_topic(self.gateway_id).name)

    async def drain(self) -> None:
        """Take no new call (and say so on /healthz), and let the live ones end on their own
        within the shutdown grace; what is left is ended by `stop`."""
        BROKERS.stopping()
        left = await self.switchboard.drain(self.settings.shutdown_grace_s)
        if left:
            log.warning("stopping with %d calls still live: they are ended", left)

    async def stop(self) -> None:
        self.live.close()
        await self._heartbeat.stop()
        await self.campaigns.stop()
        await self.switchboard.disconnect_all("gateway stopped")
        await self.lease.stop()
        await self._lag.stop()
        await self.broker.stop()
        await self.carrier.aclose()
        await self.analytics.aclose()
        await self.agent_service.aclose()
        await self.redis.aclose()

    async def on_gateway(self, env: Envelope[GatewayEvent]) -> None:
        await self.switchboard.deliver(env)

    async def on_heartbeats(self, env: Envelope[ServiceHeartbeat]) -> None:
        self.liveness.saw(env.event)

    async def on_call_news(self, env: Envelope[CallNews]) -> None:
        self.live.tell(env)
        if _is_activity(env):
            await self.switchboard.show(env)


def create_app(settings: GatewaySettings | None = None, bus: BusSettings | None = None) -> FastAPI:
    """The gateway app; its broker starts and stops with it (topics must exist, see __main__).

    Every /api route declares the scope it needs (`auth.access.requires`); `/healthz`,
    `/metrics` and the dashboard's files are open, Twilio's routes check Twilio's signatures
    and stream tokens, and `/web/call` takes a web call token (docs/security.md)."""
    keep_secrets_out_of_logs()
    gateway = Gateway(settings or GatewaySettings(), bus or BusSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(title="voicebus gateway", lifespan=lifespan)
    app.state.gateway = gateway
    app.state.access = gateway.access
    allow_cross_origin(app, gateway.settings.cors_origins)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        health = check_health(gateway.liveness, taking_calls=gateway.switchboard.taking_calls)
        body = health.model_dump(exclude_none=True)
        return JSONResponse(body, status_code=200 if health.ok else 503)

    app.include_router(
        twilio_routes(
            settings=gateway.settings,
            broker=gateway.broker,
            placements=gateway.placements,
            verifier=gateway.webhooks,
            tokens=gateway.media.tokens,
            media=gateway.media,
            on_status=gateway.campaigns.on_call_status,
            agents=gateway.agents,
        )
    )
    app.include_router(campaign_routes(gateway.campaigns))
    web_call_tokens = gateway.web_call_tokens if gateway.access.keys_required else None
    app.include_router(
        web_routes(
            switchboard=gateway.switchboard, settings=gateway.settings, tokens=web_call_tokens
        )
    )
    app.include_router(
        web_call_token_routes(
            tokens=gateway.web_call_tokens, default_agent=gateway.settings.default_agent
        )
    )
    app.include_router(
        calls_routes(dialer=gateway.carrier, control=gateway.control, analytics=gateway.analytics)
    )
    app.include_router(analytics_routes(analytics=gateway.analytics))
    app.include_router(agents_routes(agent_service=gateway.agent_service))
    app.include_router(knowledge_routes(agent_service=gateway.agent_service))
    app.include_router(live_routes(gateway.live))
    mount_dashboard(app)
    return app
