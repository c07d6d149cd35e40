"""Gateway settings (env prefix ``VB_GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from voicebus.contracts.subjects import token
from voicebus.runtime.settings import Environment, ServiceSettings

# Placeholders: accepted in development and tests, refused in production by
# ``ServiceSettings`` (every SecretStr field is checked there).
_DEV_SECRET = "dev-secret"  # noqa: S105 - a placeholder, refused in production


class GatewaySettings(ServiceSettings):
    """Settings of the gateway."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_")
    service_name: ClassVar[str] = "gateway"
    answers_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8080

    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description=(
            "Base URL providers reach this gateway's HTTP port at (scheme and host, optional "
            "path prefix). Webhook signatures are checked against it."
        ),
    )
    ws_port: int = Field(
        default=8090,
        ge=1,
        le=65535,
        description=(
            "Port of the lean media WebSocket server (every /ws/<provider> and /ws/browser), "
            "on VB_GATEWAY_HTTP_HOST."
        ),
    )
    public_ws_url: str | None = Field(
        default=None,
        description=(
            "Base URL providers open media WebSockets at (ws:// or wss://, optional path "
            "prefix). Unset: VB_GATEWAY_PUBLIC_URL's host on VB_GATEWAY_WS_PORT, wss when "
            "the public URL is https."
        ),
    )
    ws_reuse_port: bool = Field(
        default=False,
        description=(
            "Bind the media WebSocket port with SO_REUSEPORT, so several gateway processes "
            "on one host share it (the kernel spreads connections)."
        ),
    )
    ws_max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description=(
            "Media WebSockets one process serves at once; beyond, the upgrade is refused "
            "with HTTP 503 (the provider retries or fails the call over elsewhere)."
        ),
    )
    ws_start_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="A media WebSocket that has sent no valid start within this is closed.",
    )
    ws_max_bytes_per_s: int = Field(
        default=512 * 1024,
        ge=16 * 1024,
        description=(
            "Inbound bytes one media WebSocket may send per second (averaged, with two "
            "seconds of burst); more closes it (1008). A browser at 48 kHz float sends ~190 KB/s."
        ),
    )
    ws_max_backlog_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description=(
            "Outbound bytes queued for one media WebSocket that its peer has not read; "
            "more closes it (the peer stopped reading)."
        ),
    )
    drain_timeout_s: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description=(
            "On SIGTERM the media server takes no new WebSocket and live calls go on for up "
            "to this long before the rest are ended (gateway_lost); 0 ends them at once. "
            "Kubernetes' terminationGracePeriodSeconds must cover it."
        ),
    )
    default_tenant: str = Field(
        default="default", description="Tenant of inbound calls until tenants exist."
    )
    default_provider: str = Field(
        default="twilio",
        description="Provider an originate command dials through when it names none.",
    )
    twilio_auth_token: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description="Twilio account Auth Token: checks X-Twilio-Signature on webhooks.",
    )
    stream_secret: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description=(
            "Key that signs the stream parameters the webhook answer hands to the provider, "
            "so only a stream this gateway set up can start a call. Same value on every "
            "gateway instance."
        ),
    )
    stream_token_ttl_s: int = Field(
        default=300, ge=10, le=86400, description="How long a webhook answer stays usable."
    )
    ws_max_message_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description=(
            "Media WebSocket messages longer than this are counted and ignored; a frame "
            "longer than four times this closes the socket (1009)."
        ),
    )
    hangup_drain_timeout_s: float = Field(
        default=10.0,
        ge=0,
        le=120,
        description="Hang-up after playback waits at most this long for the provider's marks.",
    )
    hangup_quiet_s: float = Field(
        default=0.5,
        ge=0,
        le=10,
        description=(
            "Hang-up after playback also waits until no agent audio arrived for this long: "
            "the goodbye may still be on its way from text-to-speech when the hang-up arrives."
        ),
    )
    agent_lookup_timeout_s: float = Field(
        default=2.0, gt=0, le=30, description="Timeout of the agent lookup request."
    )
    mark_every_frames: int = Field(
        default=5, ge=1, le=500, description="Send a playback mark after every N audio frames."
    )
    browser_calls: bool | None = Field(
        default=None,
        description=(
            "Take browser calls: answer vb.rpc.gateway.sessions.create (the edge's browser "
            "page and POST /api/v1/browser-sessions ask it) and serve WS /ws/browser. "
            "Unset: on, except in production."
        ),
    )
    account_cache_ttl_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "How long a tenant's provider account asked of the edge is reused; a change "
            "made at the edge reaches the gateway within this."
        ),
    )
    account_stale_s: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description=(
            "How long past VB_GATEWAY_ACCOUNT_CACHE_TTL_S the edge's last answer about a "
            "tenant's provider account is still used while the edge cannot answer (not "
            "running, too slow, its database down), so callbacks of calls in progress are "
            "still checked with the tenant's own credentials and their outcomes kept; "
            "0: never (the lookup fails). Credentials are used at most TTL + this after the "
            "edge last handed them out."
        ),
    )
    account_cache_size: int = Field(
        default=1024, ge=1, le=1_000_000, description="Tenant accounts kept in memory at most."
    )
    provider_api_hosts: list[str] = Field(
        default_factory=lambda: [
            "api.twilio.com", "api.plivo.com", "api.vobiz.ai", "api.exotel.com",
            "api.in.exotel.com",
        ],
        description=(
            "Hosts a tenant's stored api_base_url may name (JSON list); another is ignored "
            "and the provider's own API used. Keep it equal to VB_EDGE_PROVIDER_API_HOSTS."
        ),
    )  # fmt: skip
    max_webhook_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest provider webhook body (413 above); providers post a few KiB.",
    )
    failed_webhooks_per_ip_per_minute: int = Field(
        default=30,
        ge=1,
        le=1_000_000,
        description="Webhooks with a bad signature one client address may send per minute "
        "before it is answered 429 without a check.",
    )
    account_lookup_timeout_s: float = Field(
        default=2.0, gt=0, le=30, description="How long the gateway waits for the edge's answer."
    )

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("VB_GATEWAY_PUBLIC_URL must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("VB_GATEWAY_PUBLIC_URL must not carry a query or a fragment")
        return value.strip().rstrip("/")

    @field_validator("public_ws_url")
    @classmethod
    def _check_public_ws_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError("VB_GATEWAY_PUBLIC_WS_URL must be a ws:// or wss:// URL")
        if parts.query or parts.fragment:
            raise ValueError("VB_GATEWAY_PUBLIC_WS_URL must not carry a query or a fragment")
        return value.strip().rstrip("/")

    @field_validator("default_tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        return token(value, "tenant id")

    @property
    def browser_calls_enabled(self) -> bool:
        """Whether browser calls are taken (sessions created, ``/ws/browser`` served)."""
        if self.browser_calls is not None:
            return self.browser_calls
        return self.environment is not Environment.PRODUCTION

    def public_http_url(self, path: str) -> str:
        """The public URL of ``path`` (which starts with ``/``) on this gateway."""
        return f"{self.public_url}{path}"

    @property
    def ws_base_url(self) -> str:
        """Where providers open media WebSockets (see ``public_ws_url``)."""
        if self.public_ws_url is not None:
            return self.public_ws_url
        parts = urlsplit(self.public_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.ws_port}"

    def media_ws_url(self, path: str) -> str:
        """The public URL of media WebSocket ``path`` (``/ws/<provider>``)."""
        return f"{self.ws_base_url}{path}"
