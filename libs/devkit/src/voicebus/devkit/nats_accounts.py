"""NATS users and permissions from the bus's access contract (``voicebus nats-config``).

:func:`server_config` is the ``nats-server`` configuration block (JSON, a subset of the
server's config syntax): one account holding JetStream, one user per service, the
operator's user and a downstream user per named tenant, each with the allow-lists of
:mod:`voicebus.contracts.permissions`. :func:`service_credentials` is the environment
each service needs to log in with. :func:`env_reference_config` is the same block with
each password read from an environment variable of the server (``$VB_NATS_PASSWORD_<USER>``):
the deploy files ship it, the passwords stay in the deployment's secrets.
"""

from __future__ import annotations

import json
import re
import secrets
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from voicebus.contracts import permissions
from voicebus.contracts.permissions import Grant

ACCOUNT: Final = "VOICEBUS"


def _password() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class NatsAccounts:
    """The users of one deployment and their passwords.

    Attributes:
        passwords: user name → password (services by name, ``operator``, tenants as
            ``tenant-<id>``).
        tenants: tenant id → the durable consumer names its downstream user may use.
    """

    passwords: dict[str, str]
    tenants: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def generate(cls, tenants: Mapping[str, Sequence[str]] | None = None) -> NatsAccounts:
        """Fresh random passwords for every service, the operator and ``tenants``."""
        named = {t: tuple(c) for t, c in (tenants or {}).items()}
        users = [*permissions.SERVICES, permissions.OPERATOR, *(tenant_user(t) for t in named)]
        return cls({u: _password() for u in users}, named)

    def users(self) -> list[dict[str, Any]]:
        """The ``users`` list of the account, permissions included."""
        grants: list[tuple[str, Grant]] = [
            *((s, permissions.service_grant(s)) for s in permissions.SERVICES),
            (permissions.OPERATOR, permissions.operator_grant()),
            *((tenant_user(t), permissions.tenant_grant(t, c)) for t, c in self.tenants.items()),
        ]
        return [
            {"user": name, "password": self.passwords[name], "permissions": _permissions(g)}
            for name, g in grants
        ]

    def server_config(self) -> dict[str, Any]:
        """Top-level ``nats-server`` options: the account with JetStream and its users."""
        return {"accounts": {ACCOUNT: {"jetstream": "enabled", "users": self.users()}}}

    def service_env(self, service: str) -> dict[str, str]:
        """``VB_NATS_USER`` / ``VB_NATS_PASSWORD`` of one service."""
        return {"VB_NATS_USER": service, "VB_NATS_PASSWORD": self.passwords[service]}

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> NatsAccounts:
        """The services' and the operator's passwords from ``VB_NATS_PASSWORD_<USER>`` values."""
        users = [*permissions.SERVICES, permissions.OPERATOR]
        return cls({u: variables[password_variable(u)] for u in users})

    def url_for(self, user: str, url: str) -> str:
        """``url`` with ``user``'s credentials in it (``nats://user:password@host:port``)."""
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{user}:{self.passwords[user]}@{rest}"


def password_variable(user: str) -> str:
    """The environment variable holding ``user``'s password (``VB_NATS_PASSWORD_GATEWAY``)."""
    return f"VB_NATS_PASSWORD_{user.upper().replace('-', '_')}"


_QUOTED_VARIABLE = re.compile(r'"\$(VB_NATS_PASSWORD_[A-Z0-9_]+)"')

ENV_REFERENCE_HEADER: Final = """\
# NATS users of the voicebus services and the operator, with the publish/subscribe allow-lists
# of voicebus.contracts.permissions. Generated (`voicebus nats-config --env-refs DIR`); do not
# edit. Every password is an environment variable of nats-server (VB_NATS_PASSWORD_<USER>, as
# `voicebus secrets init` writes them): an unset one makes the server refuse this file.
"""


def env_reference_config() -> str:
    """``accounts.conf`` for the services and the operator, passwords read from the environment.

    NATS substitutes an unquoted ``$NAME`` in its config with the environment variable.
    """
    names = [*permissions.SERVICES, permissions.OPERATOR]
    accounts = NatsAccounts({u: f"${password_variable(u)}" for u in names})
    text = textwrap.dedent(json.dumps(accounts.server_config(), indent=2)[1:-1]).strip() + "\n"
    return ENV_REFERENCE_HEADER + _QUOTED_VARIABLE.sub(r"$\1", text)


HELM_SECRET: Final = "voicebus-nats"  # noqa: S105 - the name of a Secret, not a value
"""The Secret in the NATS release's namespace holding the ``VB_NATS_PASSWORD_*`` keys."""

HELM_HEADER: Final = """\
# Values for the official NATS Helm chart (nats/nats), given after infra/k8s/nats/values.yaml:
# the NATS users of the voicebus services and the operator, with the publish/subscribe
# allow-lists of voicebus.contracts.permissions. Generated (`voicebus nats-config --env-refs
# DIR`); do not edit. Passwords come from the Secret voicebus-nats in the release's namespace
# (keys VB_NATS_PASSWORD_<USER>, the values `voicebus secrets init` writes); `<< $X >>` is the
# chart's syntax for an unquoted value, here an environment variable of nats-server.
"""


def helm_values() -> str:
    """Helm values adding the services' and the operator's users to the NATS chart's config."""
    names = [*permissions.SERVICES, permissions.OPERATOR]
    accounts = NatsAccounts({u: f"<< ${password_variable(u)} >>" for u in names})
    env = {
        password_variable(u): {
            "valueFrom": {"secretKeyRef": {"name": HELM_SECRET, "key": password_variable(u)}}
        }
        for u in names
    }
    values = {"container": {"env": env}, "config": {"merge": accounts.server_config()}}
    # JSON is YAML: the document stays exactly what json.dumps writes.
    return HELM_HEADER + json.dumps(values, indent=2) + "\n"


def write_env_references(out_dir: Path) -> tuple[Path, Path]:
    """Write ``accounts.conf`` (compose's nats-server) and ``helm-accounts-values.yaml``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    conf, helm = out_dir / "accounts.conf", out_dir / "helm-accounts-values.yaml"
    conf.write_text(env_reference_config(), encoding="utf-8")
    helm.write_text(helm_values(), encoding="utf-8")
    return conf, helm


def tenant_user(tenant_id: str) -> str:
    """The downstream user of a tenant."""
    return f"tenant-{tenant_id}"


def _permissions(grant: Grant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "publish": {"allow": list(grant.publish)},
        "subscribe": {"allow": list(grant.subscribe)},
    }
    if grant.responses:
        out["allow_responses"] = True
    return out


def write(accounts: NatsAccounts, out_dir: Path) -> tuple[Path, Path]:
    """Write ``accounts.conf`` (include it from the server's config) and ``nats.env``.

    ``nats.env`` holds ``VB_NATS_PASSWORD_<USER>`` lines for the deployment's secret
    store; both files are readable by their owner only.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    conf = out_dir / "accounts.conf"
    env = out_dir / "nats.env"
    for path, text in (
        (conf, json.dumps(accounts.server_config(), indent=2)[1:-1].strip() + "\n"),
        (env, "".join(f"{password_variable(u)}={p}\n" for u, p in accounts.passwords.items())),
    ):  # fmt: skip
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(text, encoding="utf-8")
    return conf, env
