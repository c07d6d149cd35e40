"""Edge settings (env prefix ``VB_EDGE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from voicebus.contracts.subjects import token
from voicebus.edge.tenancy.accounts import DEFAULT_API_HOSTS
from voicebus.edge.tenancy.credentials import fernet_keys
from voicebus.runtime.settings import Environment, ServiceSettings

# Placeholders: accepted in development and tests, refused in production by
# ``ServiceSettings`` (every SecretStr field is checked there).
_DEV_SECRET = "dev-secret"  # noqa: S105 - a placeholder, refused in production


class EdgeSettings(ServiceSettings):
    """Settings of the edge."""

    model_config = SettingsConfigDict(env_prefix="VB_EDGE_")
    service_name: ClassVar[str] = "edge"
    signs_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8086

    admin_token: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description=(
            "Operator token of the REST API (Authorization: Bearer <token>): creates "
            "tenants and their API keys."
        ),
    )
    credentials_key: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description=(
            "Fernet key(s) that encrypt tenants' provider credentials at rest, comma-separated; "
            "the first encrypts, all decrypt (rotation). Make one with "
            "cryptography.fernet.Fernet.generate_key()."
        ),
    )
    api_rate_limit_per_minute: int = Field(
        default=600, ge=1, le=1_000_000, description="Requests per minute of a new API key."
    )
    provider_api_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_API_HOSTS),
        description=(
            "Hosts a provider account's api_base_url may point at (JSON list). Only the "
            "operator token may set api_base_url at all."
        ),
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest REST request body (413 above); contact uploads have their own "
        "64 MiB limit.",
    )
    unauthenticated_per_ip_per_minute: int = Field(
        default=60,
        ge=1,
        le=1_000_000,
        description="Requests per minute one client address may make without a valid key "
        "(failed authentications, the open browser-session endpoint); 429 above.",
    )
    rpc_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="How long the REST API waits for the service that owns the data.",
    )
    retention_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often the retention job asks the owners to erase data older than "
        "each tenant's retention (one edge instance at a time).",
    )
    retention_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="How long the retention job waits for one owner to apply one tenant's "
        "retention (a large backlog takes a while).",
    )
    simulation_timeout_s: float = Field(
        default=120.0,
        gt=0,
        le=900,
        description="How long a replay or an eval waits for the orchestrator to run the "
        "conversation (every turn calls the agent's LLM).",
    )
    session_secret: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description=(
            "Key that signs the console's session cookies; the same on every edge instance. "
            "Changing it logs every console user out."
        ),
    )
    session_ttl_s: int = Field(
        default=8 * 3600, ge=60, le=30 * 86400, description="How long a console session lasts."
    )
    session_cookie_secure: bool | None = Field(
        default=None,
        description=(
            "Mark the console's cookies Secure (HTTPS only). Unset: on in production, and "
            "whenever the request came over HTTPS."
        ),
    )
    live_streams_per_key: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Live feeds (GET /api/v1/events/stream) one API key may hold open at once.",
    )
    console_dir: Path | None = Field(
        default=None,
        description=(
            "Directory of the built console (index.html and assets/), served at /console. "
            "Unset: the repository's console/dist, when it was built (make console)."
        ),
    )
    browser_page: bool | None = Field(
        default=None,
        description=(
            "Serve the browser call page and its unauthenticated session endpoint "
            "(GET /browser, POST /browser/session). Unset: on, except in production. "
            "The gateway must take browser calls too (VB_GATEWAY_BROWSER_CALLS)."
        ),
    )
    browser_page_tenant: str = Field(
        default="default",
        description="Tenant of the calls the open browser page starts and of the agents it lists.",
    )

    webhooks_allow_loopback: bool = Field(
        default=False,
        description="Let webhook URLs name loopback addresses (tests, a local demo).",
    )
    webhooks_allow_private_networks: bool = Field(
        default=False,
        description="Let webhook URLs name private addresses (an on-premises deployment).",
    )
    webhooks_max_attempts: int = Field(
        default=16,
        ge=1,
        le=100,
        description="Attempts of a delivery before it is a dead letter (the first included).",
    )
    webhooks_retry_base_s: float = Field(
        default=30.0, gt=0, le=3600, description="Delay before the first retry (before jitter)."
    )
    webhooks_retry_cap_s: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="Longest delay between retries; the defaults retry for about six hours.",
    )
    webhooks_timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="Time limit of one delivery attempt."
    )
    webhooks_max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=8 * 1024 * 1024,
        description="Events bigger than this are not sent (dead letter 'oversize').",
    )
    webhooks_concurrency: int = Field(
        default=32, ge=1, le=1024, description="Deliveries in flight at once per instance."
    )
    webhooks_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the outbox is checked for retries that fell due.",
    )
    webhooks_log_retention_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="Delivered and dead deliveries (bodies, attempts) are kept this long.",
    )
    webhooks_routes_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How soon another edge instance's subscription change takes effect.",
    )

    @field_validator("credentials_key")
    @classmethod
    def _check_credentials_key(cls, value: SecretStr) -> SecretStr:
        fernet_keys(value.get_secret_value())  # raises naming the variable, not the value
        return value

    @field_validator("browser_page_tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        return token(value, "tenant id")

    @property
    def browser_page_enabled(self) -> bool:
        """Whether the browser call page and its session endpoint are served."""
        if self.browser_page is not None:
            return self.browser_page
        return self.environment is not Environment.PRODUCTION
