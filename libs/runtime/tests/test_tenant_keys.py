"""The edge's signature on a request's tenant, and what an owner makes of it."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from voicebus.contracts.rpc import AGENTS_GET, CALLS_LIST, GetAgent, ListCalls
from voicebus.runtime.rpc.tenancy import Forbidden, TenantGuard, tenant_of
from voicebus.runtime.settings import ServiceSettings
from voicebus.runtime.tenant_keys import (
    ISSUED_HEADER,
    TenantSignatureError,
    TenantSigner,
    TenantVerifier,
    generate_keys,
    public_key_of,
)

pytestmark = pytest.mark.unit

BODY = b'{"tenant_id":"acme"}'


@pytest.fixture
def keys() -> tuple[TenantSigner, TenantVerifier]:
    signing, public = generate_keys()
    assert public_key_of(signing) == public
    return TenantSigner(signing), TenantVerifier(public)


def test_a_signature_names_its_tenant_for_this_subject_and_body_only(
    keys: tuple[TenantSigner, TenantVerifier],
) -> None:
    signer, verifier = keys
    headers = signer.headers(CALLS_LIST, "acme", BODY)
    assert verifier.tenant(CALLS_LIST, headers, BODY) == "acme"
    for subject, body, changed in (
        ("vb.rpc.audit.calls.get", BODY, {}),
        (CALLS_LIST, b'{"tenant_id":"globex"}', {}),
        (CALLS_LIST, BODY, {"Vb-Tenant": "globex"}),
        (CALLS_LIST, BODY, {ISSUED_HEADER: str(int(time.time() * 1000) + 1)}),
    ):
        with pytest.raises(TenantSignatureError):
            verifier.tenant(subject, {**headers, **changed}, body)
    with pytest.raises(TenantSignatureError, match="not signed"):
        verifier.tenant(CALLS_LIST, {}, BODY)


def test_a_signature_expires_after_two_minutes_either_way(
    keys: tuple[TenantSigner, TenantVerifier],
) -> None:
    signer, verifier = keys
    headers = signer.headers(CALLS_LIST, "acme", BODY)
    now = time.time()
    assert verifier.tenant(CALLS_LIST, headers, BODY, now=now + 100) == "acme"
    for moment in (now + 130, now - 130):
        with pytest.raises(TenantSignatureError, match="expired"):
            verifier.tenant(CALLS_LIST, headers, BODY, now=moment)


def test_another_key_is_refused(keys: tuple[TenantSigner, TenantVerifier]) -> None:
    _, verifier = keys
    forged = TenantSigner(generate_keys()[0]).headers(CALLS_LIST, "acme", BODY)
    with pytest.raises(TenantSignatureError, match="invalid"):
        verifier.tenant(CALLS_LIST, forged, BODY)


def test_the_guard_checks_tenant_scoped_procedures_but_what_services_ask(
    keys: tuple[TenantSigner, TenantVerifier],
) -> None:
    signer, verifier = keys
    guard = TenantGuard(verifier)
    with pytest.raises(Forbidden) as refused:
        guard.check(CALLS_LIST, ListCalls, None, BODY)
    assert (refused.value.status, refused.value.code) == (403, "tenant_unauthenticated")
    assert guard.check(CALLS_LIST, ListCalls, signer.headers(CALLS_LIST, "acme", BODY), BODY) == (
        "acme"
    )
    # The gateway and media look up a call's agent themselves: not signed.
    assert guard.check(AGENTS_GET, GetAgent, None, BODY) is None
    # Without the public key nothing is enforced (development).
    assert TenantGuard.from_key(None).check(CALLS_LIST, ListCalls, None, BODY) is None
    assert tenant_of(ListCalls(tenant_id="acme")) == "acme"


class _Owner(ServiceSettings):
    service_name = "owner"
    answers_tenants = True


class _Asker(ServiceSettings):
    service_name = "asker"
    signs_tenants = True


def test_production_needs_the_keys_and_a_bad_key_fails_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("VB_RPC_TENANT_PUBLIC_KEY", "VB_RPC_TENANT_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    signing, public = generate_keys()
    with pytest.raises(ValueError, match="VB_RPC_TENANT_PUBLIC_KEY is not set"):
        _Owner(environment="production")
    with pytest.raises(ValueError, match="VB_RPC_TENANT_SIGNING_KEY is not set"):
        _Asker(environment="production")
    _Owner(environment="production", rpc_tenant_public_key=public)
    asker = _Asker(environment="production", rpc_tenant_signing_key=SecretStr(signing))
    assert asker.tenant_signer is not None
    with pytest.raises(ValueError, match="VB_RPC_TENANT_PUBLIC_KEY: the tenant public key"):
        _Owner(rpc_tenant_public_key="not-a-key")
