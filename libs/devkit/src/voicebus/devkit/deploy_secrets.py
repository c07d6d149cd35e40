"""Strong random values for every secret a production deployment needs.

``voicebus secrets init`` writes them twice: a ``.env`` file that docker compose
reads next to ``compose.yaml``, and a Kubernetes Secret manifest
(``voicebus-secrets``) that the Deployments in ``infra/k8s`` read. Services run
with ``VB_ENVIRONMENT=production`` refuse placeholder values (``dev-secret``,
``changeme``), so each of these must be set, and each gets its own value.

The list is kept here because the devkit may not import services; a test in
``tests/deploy`` checks it against every service's settings, so a new secret
setting cannot be forgotten.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from voicebus.contracts import permissions
from voicebus.devkit.nats_accounts import password_variable
from voicebus.runtime.tenant_keys import generate_keys, public_key_of

__all__ = [
    "PUBLIC_KEY",
    "SECRETS",
    "SecretKind",
    "SecretSpec",
    "database_url",
    "env_file",
    "generate",
    "k8s_secret",
]


class SecretKind(StrEnum):
    """How a secret's value is made."""

    TOKEN = "token"  # noqa: S105 - a kind name; 32 random bytes, URL-safe base64
    PASSWORD = "password"  # noqa: S105 - a kind name; 24 random bytes in hex (URL-safe)
    FERNET = "fernet"  # a Fernet key: 32 random bytes, URL-safe base64 with padding
    ED25519 = "ed25519"  # an Ed25519 seed: 32 random bytes, URL-safe base64 without padding


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One secret variable: its name, how it is made and what it is for."""

    name: str
    kind: SecretKind
    purpose: str


SECRETS: Final = (
    SecretSpec(
        "VB_POSTGRES_PASSWORD",
        SecretKind.PASSWORD,
        "password of the PostgreSQL role voicebus (part of VB_DATABASE_URL)",
    ),
    SecretSpec(
        "VB_GATEWAY_STREAM_SECRET",
        SecretKind.TOKEN,
        "signs the stream parameters of webhook answers; the same on every gateway",
    ),
    SecretSpec(
        "VB_GATEWAY_TWILIO_AUTH_TOKEN",
        SecretKind.TOKEN,
        "the default tenant's Twilio Auth Token: put the account's real one here to take "
        "its calls (webhook signatures are checked with it)",
    ),
    SecretSpec(
        "VB_GATEWAY_PLIVO_AUTH_TOKEN",
        SecretKind.TOKEN,
        "the default tenant's Plivo Auth Token: the account's real one to take its calls",
    ),
    SecretSpec(
        "VB_GATEWAY_VOBIZ_AUTH_TOKEN",
        SecretKind.TOKEN,
        "the default tenant's Vobiz Auth Token: the account's real one to take its calls",
    ),
    SecretSpec(
        "VB_GATEWAY_EXOTEL_WEBHOOK_PASSWORD",
        SecretKind.TOKEN,
        "password in the URLs Exotel calls the gateway at (Basic auth)",
    ),
    SecretSpec(
        "VB_EDGE_ADMIN_TOKEN",
        SecretKind.TOKEN,
        "operator token of the REST API (creates tenants and their API keys)",
    ),
    SecretSpec(
        "VB_EDGE_SESSION_SECRET",
        SecretKind.TOKEN,
        "signs the console's session cookies; the same on every edge instance",
    ),
    SecretSpec(
        "VB_EDGE_CREDENTIALS_KEY",
        SecretKind.FERNET,
        "encrypts tenants' provider credentials at rest: losing it loses them",
    ),
    SecretSpec(
        "VB_ORCHESTRATOR_SECRETS_KEY",
        SecretKind.FERNET,
        "encrypts webhook tools' secrets at rest: losing it loses them",
    ),
    SecretSpec(
        "VB_RPC_TENANT_SIGNING_KEY",
        SecretKind.ED25519,
        "the edge's key: it signs the tenant of each request it asks the owners of data "
        "(VB_RPC_TENANT_PUBLIC_KEY, its public half, lets them check); the edge only",
    ),
    # infra/nats/accounts.conf reads these from nats-server's environment; each service
    # logs in as its own user with its own (VB_NATS_USER / VB_NATS_PASSWORD).
    *(
        SecretSpec(
            password_variable(user),
            SecretKind.PASSWORD,
            f"NATS password of the {user} user (publish/subscribe only its own subjects)",
        )
        for user in (*permissions.SERVICES, permissions.OPERATOR)
    ),
)
"""Every secret a production deployment must set, in the order the files list them."""

DEFAULT_DATABASE_HOST: Final = "voicebus-db-rw.voicebus.svc:5432"
"""The read-write Service of a CloudNativePG cluster named voicebus-db in namespace voicebus."""


PUBLIC_KEY: Final = "VB_RPC_TENANT_PUBLIC_KEY"
"""Not a secret, but made with one: the public half of ``VB_RPC_TENANT_SIGNING_KEY``."""


def _value(kind: SecretKind) -> str:
    if kind is SecretKind.ED25519:
        return generate_keys()[0]
    if kind is SecretKind.PASSWORD:
        return secrets.token_hex(24)
    if kind is SecretKind.FERNET:
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)


def generate() -> dict[str, str]:
    """A fresh random value for every secret in :data:`SECRETS`, and :data:`PUBLIC_KEY`."""
    values = {spec.name: _value(spec.kind) for spec in SECRETS}
    values[PUBLIC_KEY] = public_key_of(values["VB_RPC_TENANT_SIGNING_KEY"])
    return values


def database_url(password: str, host: str = DEFAULT_DATABASE_HOST) -> str:
    """``VB_DATABASE_URL`` for the role and database ``voicebus`` on ``host`` (host:port)."""
    return f"postgresql://voicebus:{password}@{host}/voicebus"


_HEADER: Final = """\
# voicebus production secrets, made by `voicebus secrets init`. Keep this file out of
# version control and readable only by its owner. The two Fernet keys encrypt data at
# rest: keep a copy in your secret store, since losing one loses what it encrypted.
"""


def env_file(values: Mapping[str, str], public_url: str) -> str:
    """The ``.env`` docker compose reads next to ``compose.yaml``.

    Args:
        values: the secrets, as :func:`generate` makes them.
        public_url: where providers reach the gateway (``VB_GATEWAY_PUBLIC_URL``).
    """
    lines = [_HEADER]
    for spec in SECRETS:
        lines.append(f"# {spec.purpose}\n{spec.name}={values[spec.name]}\n")
    lines.append(
        "# Not a secret: the public half of VB_RPC_TENANT_SIGNING_KEY (the owners of data)\n"
        f"{PUBLIC_KEY}={values[PUBLIC_KEY]}\n"
    )
    lines.append(
        "# Not a secret: where telephony providers reach the gateway's webhooks\n"
        f"VB_GATEWAY_PUBLIC_URL={public_url}\n"
    )
    return "\n".join(lines)


def _yaml_quoted(value: str) -> str:
    # Every generated value is made of [A-Za-z0-9_=:/@.-]: a double-quoted scalar needs no escape.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def k8s_secret(
    values: Mapping[str, str],
    *,
    database_host: str = DEFAULT_DATABASE_HOST,
    namespace: str = "voicebus",
) -> str:
    """The Secret ``voicebus-secrets`` the Deployments in ``infra/k8s`` read.

    ``VB_DATABASE_URL`` is built from ``VB_POSTGRES_PASSWORD`` and ``database_host``;
    the password is listed too, to create the role with it.
    """
    data = {"VB_DATABASE_URL": database_url(values["VB_POSTGRES_PASSWORD"], database_host)}
    data.update({spec.name: values[spec.name] for spec in SECRETS})
    data[PUBLIC_KEY] = values[PUBLIC_KEY]
    body = "".join(f"  {name}: {_yaml_quoted(value)}\n" for name, value in data.items())
    return (
        _HEADER
        + "apiVersion: v1\nkind: Secret\nmetadata:\n  name: voicebus-secrets\n"
        + f"  namespace: {namespace}\ntype: Opaque\nstringData:\n{body}"
    )
