"""Settings every service shares, and the base class each service's settings extend.

Shared fields are read from fixed ``VB_*`` names whatever the subclass's prefix
(one ``VB_NATS_URL`` for the whole deployment); per-service fields use the
subclass's ``env_prefix``::

    class GatewaySettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_")
        service_name: ClassVar[str] = "gateway"
        default_http_port: ClassVar[int] = 8081

reads ``VB_NATS_URL`` and ``VB_GATEWAY_HTTP_PORT``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus.contracts.subjects import token
from voicebus.runtime.tenant_keys import TenantSigner, TenantVerifier

__all__ = ["Environment", "ServiceSettings", "default_instance_id", "is_placeholder_secret"]


class Environment(StrEnum):
    """Where a service runs; production refuses placeholder secrets."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "console"]

# Values people paste from examples. Compared after lower-casing and removing
# everything but letters and digits, so "CHANGE_ME" and "change-me" both match.
_PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "changethis",
        "changemeplease",
        "devsecret",
        "testsecret",
        "secret",
        "secretkey",
        "mysecret",
        "password",
        "passw0rd",
        "pass",
        "admin",
        "dev",
        "test",
        "example",
        "placeholder",
        "default",
        "insecure",
        "todo",
        "xxx",
        "none",
        "null",
    }
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_URL_PASSWORD = re.compile(r"(://[^:/@,]*:)[^@,]*@")
_NATS_SCHEMES = ("nats://", "tls://", "ws://", "wss://")


def is_placeholder_secret(value: str) -> bool:
    """True for an empty value or one copied from an example (``changeme``, ``dev-secret``).

    A URL (``postgresql://user:changeme@db/x``) is judged by its password.
    """
    if "://" in value:
        password = urlsplit(value.strip()).password
        return password is not None and is_placeholder_secret(password)
    folded = _NOT_ALNUM.sub("", value.strip().lower())
    return folded in _PLACEHOLDERS or set(folded) <= {"x"}


def default_instance_id() -> str:
    """``<hostname>-<pid>-<6 hex>``, restricted to characters safe in a subject token."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
    return f"{host[:64]}-{os.getpid()}-{secrets.token_hex(3)}"


def _shared(name: str) -> AliasChoices:
    """A fixed environment name, not affected by the subclass's ``env_prefix``."""
    return AliasChoices(name)


class ServiceSettings(BaseSettings):
    """Base of every service's settings: subclass it, never instantiate it directly.

    A subclass sets ``model_config = SettingsConfigDict(env_prefix="VB_<NAME>_")``,
    ``service_name`` and ``default_http_port``. Shared fields come from fixed
    ``VB_*`` names; ``http_host``, ``http_port``, ``instance_id`` and
    ``shutdown_timeout_s`` come from the subclass's prefix.
    """

    model_config = SettingsConfigDict(
        env_prefix="VB_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        validate_default=True,
        hide_input_in_errors=True,  # the input holds secrets in clear
    )

    service_name: ClassVar[str]
    """Short name, a subject token: ``gateway``, ``media``, ``audit`` ..."""
    answers_tenants: ClassVar[bool] = False
    """Whether the service answers tenant-scoped requests from the edge: in production it
    needs ``VB_RPC_TENANT_PUBLIC_KEY`` to check who sent them."""
    signs_tenants: ClassVar[bool] = False
    """Whether the service asks on behalf of tenants (the edge): in production it needs
    ``VB_RPC_TENANT_SIGNING_KEY``."""
    default_http_port: ClassVar[int] = 8080
    """Port used when ``<PREFIX>HTTP_PORT`` is not set."""

    # Shared by every service: fixed names.
    environment: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias=_shared("VB_ENVIRONMENT")
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=_shared("VB_NATS_URL"),
        repr=False,  # may carry user:password@
        description="One NATS URL or a comma-separated list of cluster URLs.",
    )
    nats_user: str | None = Field(default=None, validation_alias=_shared("VB_NATS_USER"))
    nats_password: SecretStr | None = Field(
        default=None, validation_alias=_shared("VB_NATS_PASSWORD")
    )
    nats_creds: SecretStr | None = Field(
        default=None,
        validation_alias=_shared("VB_NATS_CREDS"),
        description="A .creds file path, or the file's content (JWT and seed).",
    )
    nats_tls_ca: Path | None = Field(
        default=None,
        validation_alias=_shared("VB_NATS_TLS_CA"),
        description=(
            "PEM file of the CA that signed the NATS servers' certificates: the connection is "
            "TLS and the server is verified against it (`voicebus nats-config --tls` writes one)."
        ),
    )
    nats_tls_cert: Path | None = Field(
        default=None,
        validation_alias=_shared("VB_NATS_TLS_CERT"),
        description="PEM client certificate, for servers that verify clients (mutual TLS).",
    )
    nats_tls_key: Path | None = Field(
        default=None,
        validation_alias=_shared("VB_NATS_TLS_KEY"),
        description="PEM private key of VB_NATS_TLS_CERT.",
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=_shared("VB_DATABASE_URL")
    )
    db_connect_timeout_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_shared("VB_DB_CONNECT_TIMEOUT_S"),
        description="Longest wait for a new PostgreSQL connection.",
    )
    db_statement_timeout_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias=_shared("VB_DB_STATEMENT_TIMEOUT_S"),
        description="Longest one SQL statement may run before it is cancelled.",
    )
    db_pool_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_shared("VB_DB_POOL_TIMEOUT_S"),
        description="Longest wait for a free connection from the service's pool.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=_shared("VB_SECRET_KEY"),
        description="Key for services that sign or encrypt (e.g. provider credentials).",
    )
    rpc_tenant_signing_key: SecretStr | None = Field(
        default=None,
        validation_alias=_shared("VB_RPC_TENANT_SIGNING_KEY"),
        description=(
            "The edge's Ed25519 key (base64url): it signs the tenant of every request it "
            "asks the owners of data (`voicebus secrets init` makes it). The edge and "
            "operator tools only."
        ),
    )
    rpc_tenant_public_key: str | None = Field(
        default=None,
        validation_alias=_shared("VB_RPC_TENANT_PUBLIC_KEY"),
        description=(
            "The public half of VB_RPC_TENANT_SIGNING_KEY: owners of data answer a "
            "tenant's requests only when the edge signed them. Required in production by "
            "the services that answer them."
        ),
    )
    jetstream_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        validation_alias=_shared("VB_JETSTREAM_REPLICAS"),
        description=(
            "Replicas of every JetStream stream and KV bucket the services provision (3 on a "
            "3-node NATS cluster). Unset: new ones get 1 and existing ones keep theirs."
        ),
    )
    jetstream_storage: Literal["file", "memory"] = Field(
        default="file",
        validation_alias=_shared("VB_JETSTREAM_STORAGE"),
        description=(
            "Storage of the streams and KV buckets the services create: file (durable) or "
            "memory (lost when NATS restarts; benchmarks). An existing one keeps its storage."
        ),
    )
    log_level: LogLevel = Field(default="INFO", validation_alias=_shared("VB_LOG_LEVEL"))
    log_format: LogFormat = Field(default="json", validation_alias=_shared("VB_LOG_FORMAT"))
    log_redact_pii: bool = Field(default=True, validation_alias=_shared("VB_LOG_REDACT_PII"))
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "VB_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description=(
            "OTLP/HTTP collector base URL (traces go to <url>/v1/traces). Unset: no trace "
            "starts here and nothing is exported. The standard OTEL_ name is read too."
        ),
    )
    events_max_bytes: int = Field(
        default=-1,
        ge=-1,
        validation_alias=_shared("VB_EVENTS_MAX_BYTES"),
        description=(
            "Byte cap of the VB_EVENTS stream (-1: none): when full, the oldest events are "
            "dropped, so a flood cannot fill the disk. Set it in production well above what "
            "the retention period holds; every process on one NATS must use the same value."
        ),
    )
    call_lease_ttl_s: float = Field(
        default=10.0,
        ge=1.0,
        validation_alias=_shared("VB_CALL_LEASE_TTL_S"),
        description=(
            "TTL of the call-ownership leases in vb_call_owners: how long a call may go "
            "unserved after its owner died. Every process on one NATS must use the same value."
        ),
    )

    # Per service: read with the subclass's env_prefix.
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    instance_id: str = Field(default_factory=default_instance_id)
    shutdown_timeout_s: int = Field(default=15, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _default_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("http_port") in (None, ""):
            return {**data, "http_port": cls.default_http_port}
        return data

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("VB_NATS_URL is empty")
        for server in servers:
            if not server.startswith(_NATS_SCHEMES):
                raise ValueError(
                    "VB_NATS_URL entries must start with nats://, tls://, ws:// or wss://"
                )
        return ",".join(servers)

    @field_serializer("nats_url")
    def _mask_nats_url(self, value: str) -> str:
        return _URL_PASSWORD.sub(r"\1***@", value)

    @field_validator("instance_id")
    @classmethod
    def _check_instance_id(cls, value: str) -> str:
        # Instance ids end up in subjects, KV lease values and metric labels.
        return token(value, "instance id")

    @model_validator(mode="after")
    def _check_secrets(self) -> ServiceSettings:
        if not getattr(type(self), "service_name", ""):
            raise ValueError(f"{type(self).__name__} must set the class variable service_name")
        token(type(self).service_name, "service name")
        if self.nats_password is not None and not self.nats_user:
            raise ValueError("VB_NATS_PASSWORD is set but VB_NATS_USER is not")
        if self.nats_user and self.nats_creds is not None:
            raise ValueError("set either VB_NATS_USER/VB_NATS_PASSWORD or VB_NATS_CREDS, not both")
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError("VB_NATS_TLS_CERT and VB_NATS_TLS_KEY go together")
        if self.nats_tls_cert is not None and self.nats_tls_ca is None:
            raise ValueError("VB_NATS_TLS_CERT needs VB_NATS_TLS_CA (the server is verified too)")
        if self.environment is Environment.PRODUCTION:
            for name in type(self).model_fields:
                value = getattr(self, name)
                if isinstance(value, SecretStr) and is_placeholder_secret(value.get_secret_value()):
                    raise ValueError(
                        f"{self._env_name(name)} is empty or uses a placeholder value; "
                        "set a real secret in production"
                    )
            if type(self).answers_tenants and not self.rpc_tenant_public_key:
                raise ValueError(
                    "VB_RPC_TENANT_PUBLIC_KEY is not set: in production this service answers "
                    "only requests the edge signed (run voicebus secrets init)"
                )
            if type(self).signs_tenants and self.rpc_tenant_signing_key is None:
                raise ValueError(
                    "VB_RPC_TENANT_SIGNING_KEY is not set: in production the owners of data "
                    "answer only requests the edge signed (run voicebus secrets init)"
                )
        self._check_tenant_keys()
        return self

    def _check_tenant_keys(self) -> None:
        # A key that cannot be read fails at start, not on the first request.
        try:
            if self.rpc_tenant_signing_key is not None:
                TenantSigner(self.rpc_tenant_signing_key.get_secret_value())
        except ValueError as bad:
            raise ValueError(f"VB_RPC_TENANT_SIGNING_KEY: {bad}") from None
        try:
            if self.rpc_tenant_public_key:
                TenantVerifier(self.rpc_tenant_public_key)
        except ValueError as bad:
            raise ValueError(f"VB_RPC_TENANT_PUBLIC_KEY: {bad}") from None

    @property
    def tenant_signer(self) -> TenantSigner | None:
        """What signs this process's tenant-scoped requests (the edge, operator tools)."""
        key = self.rpc_tenant_signing_key
        return TenantSigner(key.get_secret_value()) if key is not None else None

    @classmethod
    def _env_name(cls, field: str) -> str:
        """The environment variable a field is read from, for error messages."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            return alias.choices[0]
        if isinstance(alias, str):
            return alias
        prefix = str(cls.model_config.get("env_prefix", ""))
        return f"{prefix}{field}".upper()

    @property
    def nats_servers(self) -> list[str]:
        """``VB_NATS_URL`` split into one URL per cluster member."""
        return self.nats_url.split(",")

    @property
    def connection_name(self) -> str:
        """``<service>/<instance>``: how this process shows up in NATS and PostgreSQL."""
        return f"{type(self).service_name}/{self.instance_id}"
