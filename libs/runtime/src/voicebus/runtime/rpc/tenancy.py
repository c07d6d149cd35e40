"""Whose request is this: the edge's signed word on a request's tenant.

The edge authenticates people and systems (API keys, the console's session) and asks
the owners of data on their behalf. An owner must not take the tenant from the request
body alone: anything allowed to publish on ``vb.rpc.<owner>.>`` could name another
tenant. So the edge signs what it asks with an Ed25519 key only it holds, and the
owners check the signature with the public key:

    Vb-Tenant: <tenant id, empty for the operator's tenant-wide requests>
    Vb-Tenant-Issued: <unix milliseconds>
    Vb-Tenant-Signature: base64url(Ed25519(key, "voicebus-tenant-v1" LF subject LF
                                            tenant LF issued LF sha256(body) hex))

An owner with a public key (``VB_RPC_TENANT_PUBLIC_KEY``) answers a tenant-scoped
procedure only when the signature is valid, at most two minutes old, made for this
subject and this body, and its tenant is the body's ``tenant_id``; otherwise it
answers 403. Procedures that services ask for themselves while serving a call
(:data:`SERVICE_ASKED`) are not signed: the NATS permissions say who may ask them.

Operator tools sign with the same key when ``VB_RPC_TENANT_SIGNING_KEY`` is in their
environment. A signed request can be replayed within those two minutes only as itself
(same subject, same body, same tenant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from weakref import WeakKeyDictionary

from pydantic import BaseModel

from voicebus.contracts.rpc import AGENTS_GET
from voicebus.contracts.telephony import ACCOUNTS_GET
from voicebus.runtime.rpc.faults import RpcFault
from voicebus.runtime.tenant_keys import TenantSignatureError, TenantVerifier

SERVICE_ASKED: Final = frozenset({AGENTS_GET, ACCOUNTS_GET})
"""Tenant-scoped procedures services ask while serving a call (the gateway and media
look up the call's agent; the gateway its tenant's provider account): not signed."""


class Forbidden(RpcFault):
    """The request does not carry the edge's word for its tenant."""

    status = 403
    default_code = "tenant_unauthenticated"


def tenant_of(request: BaseModel) -> str | None:
    """The tenant a request names (``""`` for tenant-wide), None when it names none."""
    if "tenant_id" not in type(request).model_fields:
        return None
    value = getattr(request, "tenant_id", None)
    return "" if value is None else str(value)


def is_tenant_scoped(subject: str, request_type: type[BaseModel]) -> bool:
    """Whether an owner answers ``subject`` only with the edge's signature."""
    return "tenant_id" in request_type.model_fields and subject not in SERVICE_ASKED


@dataclass(frozen=True, slots=True)
class TenantGuard:
    """What an owner process enforces: nothing without the edge's public key."""

    verifier: TenantVerifier | None = None

    @classmethod
    def from_key(cls, public_key: str | None) -> TenantGuard:
        """A guard checking signatures with ``public_key``; one checking nothing if unset."""
        return cls(TenantVerifier(public_key) if public_key else None)

    def check(
        self, subject: str, request_type: type[BaseModel], headers: Mapping[str, str] | None,
        body: bytes,
    ) -> str | None:  # fmt: skip
        """The tenant the request must name, or None when nothing is enforced here.

        Raises:
            Forbidden: the procedure needs the edge's signature and it is missing or bad.
        """
        if self.verifier is None or not is_tenant_scoped(subject, request_type):
            return None
        try:
            return self.verifier.tenant(subject, headers, body)
        except TenantSignatureError as bad:
            raise Forbidden(str(bad)) from None


_GUARDS: WeakKeyDictionary[object, TenantGuard] = WeakKeyDictionary()
_OPEN: Final = TenantGuard()


def attach(broker: object, guard: TenantGuard) -> None:
    """Make ``guard`` what the responders declared on ``broker`` enforce."""
    _GUARDS[broker] = guard


def guard_of(broker: object) -> TenantGuard:
    """The guard attached to ``broker`` (one enforcing nothing if none was)."""
    return _GUARDS.get(broker, _OPEN)
