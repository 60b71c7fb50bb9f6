"""Gateway settings (env prefix VOICEBUS_GATEWAY_, plus the edge's shared VOICEBUS_* names)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from voicebus_gateway.auth import policy
from voicebus_gateway.auth.origins import origin_of
from voicebus_gateway.auth.policy import AuthMode
from voicebus_gateway.ports import E164
from voicebus_gateway.uplink import BUS_FRAME_MS
from voicebus_runtime.settings import BusSettings

_NOT_IN_TOPIC_NAME = re.compile(r"[^A-Za-z0-9._-]")


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOICEBUS_GATEWAY_", extra="ignore", validate_by_name=True
    )

    gateway_id: str | None = Field(
        default=None,
        validation_alias="VOICEBUS_GATEWAY_ID",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._-]+$",
    )
    """This replica's id, naming the topic it reads; derived from the instance id if unset."""
    host: str = Field(default="127.0.0.1", validation_alias="VOICEBUS_HOST")
    port: int = Field(default=8080, validation_alias="VOICEBUS_PORT", ge=0, le=65_535)
    public_url: str | None = Field(default=None, validation_alias="VOICEBUS_PUBLIC_URL")
    """Where Twilio reaches this gateway (https://voice.example.com); else the request's Host."""
    analytics_url: str = Field(
        default="http://127.0.0.1:8081", validation_alias="VOICEBUS_ANALYTICS_URL"
    )
    agents_url: str = Field(default="http://127.0.0.1:8082", validation_alias="VOICEBUS_AGENTS_URL")
    """The agent service's API, which keeps the agents."""
    default_agent: str = Field(default="default", min_length=1, max_length=128)
    """The agent a call talks to when nothing else chooses one."""
    number_agents: Annotated[dict[str, str], NoDecode] = {}
    """Which agent answers each of our phone numbers: `+14155550100=sales,+14155550101=support`
    in the environment; numbers not listed get the default agent."""
    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias="TWILIO_AUTH_TOKEN")
    """Verifies Twilio's webhook signatures and signs media-stream tokens; without it Twilio's
    webhooks are refused."""
    twilio_api_url: str | None = Field(default=None, validation_alias="VOICEBUS_TWILIO_API_URL")
    """Twilio's REST API base URL; set only to point at a stand-in (tests)."""
    twilio_from_number: E164 | None = Field(
        default=None, validation_alias="VOICEBUS_TWILIO_FROM_NUMBER"
    )
    """The caller id of outbound calls that do not name one."""
    stream_token_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    """How long the media-stream token in the TwiML answer stays valid (Twilio connects within
    a second or two)."""
    web_idle_timeout_s: float = Field(default=60.0, gt=0)
    """A browser streams its microphone all the time, silence included: a web call silent this
    long has lost its client, and is ended."""
    replica_lease_s: float = Field(default=10.0, gt=0)
    """A replica that has not renewed its lease in Redis this long is dead: its calls are ended."""
    shutdown_grace_s: int = Field(default=10, gt=0)
    """On SIGTERM, how long open sockets get to close before their calls are ended anyway."""
    required_services: Annotated[tuple[str, ...], NoDecode] = (
        "gateway",
        "media",
        "stt",
        "agent",
        "tts",
        "analytics",
    )
    """Services /healthz requires a recent heartbeat from (comma-separated in the environment)."""
    heartbeat_stale_s: float = Field(default=10.0, gt=0)
    """A service whose last heartbeat is older than this counts as down."""
    bus_frame_ms: int = Field(default=BUS_FRAME_MS, ge=10, le=1_000)
    """The caller's audio goes to the bus in frames this long, gathered from the transport's
    20 ms frames: each bus frame costs about the same whatever its length, so longer frames
    take more calls per core, for about half a frame more before the end of a turn is heard."""
    playback_lead_ms: int = Field(default=100, ge=20, le=2_000)
    """Reply audio sent ahead of real time, so network jitter does not starve the caller's end."""
    auth: AuthMode = Field(default="auto", validation_alias="VOICEBUS_AUTH")
    """When the API needs a key: `auto`, unless only this machine reaches the gateway;
    `required`; `off`, refused where others reach it (`voicebus_gateway.auth.policy`)."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="VOICEBUS_CORS_ORIGINS"
    )
    """Web pages of other origins that may call the API and open web calls from a browser
    (`https://crm.example.com`, comma-separated in the environment); none: the gateway's own."""
    rate_limit_per_minute: int = Field(
        default=600, ge=1, validation_alias="VOICEBUS_RATE_LIMIT_PER_MINUTE"
    )
    """API requests a minute for each key, across every replica (bursts up to a minute's)."""
    web_call_token_ttl_s: float = Field(default=60.0, gt=0, le=3600)
    """How long a web call token from `POST /api/web-calls` stays valid (it is used once, as
    the browser opens the call)."""
    data_dir: Path = Field(default=Path(".voicebus"), validation_alias="VOICEBUS_DATA_DIR")
    """Where the embedded stack keeps its files."""
    recordings_dir: Path = Field(
        default=None, validation_alias="VOICEBUS_RECORDINGS_DIR", validate_default=True
    )
    """Where each call's recording is written, as `<call_id>.wav` (analytics serves them from
    the same directory); default `<data_dir>/recordings`."""

    @field_validator("required_services", mode="before")
    @classmethod
    def _split_services(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ValueError(
                    f"an origin is scheme://host[:port] (https://crm.example.com): {origin!r}"
                )
        return tuple(origin_of(origin) for origin in value)

    @field_validator("number_agents", mode="before")
    @classmethod
    def _split_number_agents(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for pair in filter(None, (item.strip() for item in value.split(","))):
            number, sep, agent = pair.partition("=")
            if not sep or not number.strip() or not agent.strip():
                raise ValueError(f"expected +number=agent_id, got {pair!r}")
            mapping[number.strip()] = agent.strip()
        return mapping

    @field_validator("recordings_dir", mode="before")
    @classmethod
    def _default_to_data_dir(cls, value: object, info: ValidationInfo) -> object:
        if value is None or value == "":
            return info.data["data_dir"] / "recordings"
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ValueError(f"must be an http(s) URL (https://voice.example.com): {value!r}")
        return value

    @model_validator(mode="after")
    def _auth_off_only_where_only_this_machine_reaches(self) -> Self:
        refused = policy.refusal(self.auth, host=self.host, public_url=self.public_url)
        if refused is not None:
            raise ValueError(refused)
        return self

    @property
    def keys_required(self) -> bool:
        """Whether every API call, and every web call, needs a key (or a token got with one)."""
        return policy.keys_required(self.auth, host=self.host, public_url=self.public_url)

    @property
    def browser_origins(self) -> frozenset[str]:
        """Origins whose pages may open web calls: the listed ones, and our public URL's."""
        public = () if self.public_url is None else (origin_of(self.public_url),)
        return frozenset((*self.cors_origins, *public))

    def resolved_gateway_id(self, bus: BusSettings) -> str:
        """The configured id, else the instance id made safe for a Kafka topic name."""
        if self.gateway_id is not None:
            return self.gateway_id
        return _NOT_IN_TOPIC_NAME.sub("-", bus.instance_id)[:128]
