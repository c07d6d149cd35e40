"""Tenants, API keys and provider accounts: the operator's and tenant admins' routes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response

from voicebus.edge.api.auth import Principal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.schemas import (
    AccountOut,
    AccountPut,
    KeyCreate,
    KeyCreated,
    KeyIdPath,
    KeyOut,
    ProviderPath,
    TenantCreate,
    TenantIdPath,
    TenantLimitsBody,
    TenantOut,
    TenantPatch,
    TenantRetentionBody,
)
from voicebus.edge.tenancy import keys, retention
from voicebus.edge.tenancy.accounts import check_account_fields
from voicebus.edge.tenancy.store import AccountInfo, ApiKey, Tenant, TenantLimits

log = logging.getLogger(__name__)


def _tenant(t: Tenant) -> TenantOut:
    return TenantOut(
        tenant_id=t.tenant_id, name=t.name, disabled=t.disabled, created_at=t.created_at
    )


def _key(k: ApiKey) -> KeyOut:
    return KeyOut(
        key_id=k.key_id,
        tenant_id=k.tenant_id,
        name=k.name,
        scopes=sorted(k.scopes),
        rate_limit_per_minute=k.rate_limit_per_minute,
        created_at=k.created_at,
        revoked_at=k.revoked_at,
    )


def _account(a: AccountInfo) -> AccountOut:
    return AccountOut(
        provider=a.provider,
        secrets_set=list(a.secret_names),
        fields=a.fields,
        updated_at=a.updated_at,
    )


def tenants_router(edge: Edge) -> APIRouter:
    """``/tenants``: tenants (operator), their keys and accounts (operator or tenant admin)."""
    router = APIRouter(prefix="/tenants", tags=["tenants"], responses=ERROR_RESPONSES)
    operator = Depends(edge.auth.operator())
    manager = Depends(edge.auth.manager())
    store = edge.store

    @router.post("", status_code=201, response_model=TenantOut, dependencies=[operator])
    async def create_tenant(body: TenantCreate) -> TenantOut:
        """Create a tenant (operator token only)."""
        return _tenant(await store.create_tenant(body.tenant_id, body.name))

    @router.get("", response_model=list[TenantOut], dependencies=[operator])
    async def list_tenants() -> list[TenantOut]:
        """Every tenant (operator token only)."""
        return [_tenant(t) for t in await store.tenants()]

    @router.get("/{tenant_id}", response_model=TenantOut, dependencies=[manager])
    async def get_tenant(tenant_id: TenantIdPath) -> TenantOut:
        """One tenant."""
        return _tenant(await store.tenant(tenant_id))

    @router.patch("/{tenant_id}", response_model=TenantOut, dependencies=[operator])
    async def patch_tenant(tenant_id: TenantIdPath, body: TenantPatch) -> TenantOut:
        """Disable a tenant (its keys are refused at once, on every instance) or enable it."""
        tenant = await store.set_disabled(tenant_id, body.disabled)
        log.warning("tenant changed", extra={"tenant_id": tenant_id, "disabled": body.disabled})
        return _tenant(tenant)

    @router.put("/{tenant_id}/limits", response_model=TenantLimitsBody, dependencies=[operator])
    async def put_limits(tenant_id: TenantIdPath, body: TenantLimitsBody) -> TenantLimitsBody:
        """Set what the tenant may place: calls per minute, destination countries, live calls."""
        countries = None if body.allowed_countries is None else frozenset(body.allowed_countries)
        limits = TenantLimits(body.calls_per_minute, countries, body.max_concurrent_calls)
        await store.put_limits(tenant_id, limits)
        return body

    @router.get("/{tenant_id}/limits", response_model=TenantLimitsBody, dependencies=[manager])
    async def get_limits(tenant_id: TenantIdPath) -> TenantLimitsBody:
        """The tenant's limits."""
        await store.tenant(tenant_id)
        limits = await store.limits(tenant_id)
        countries = None if limits.allowed_countries is None else sorted(limits.allowed_countries)
        return TenantLimitsBody(
            calls_per_minute=limits.calls_per_minute,
            allowed_countries=countries,
            max_concurrent_calls=limits.max_concurrent_calls,
        )

    @router.put("/{tenant_id}/retention", response_model=TenantRetentionBody,
                dependencies=[manager])  # fmt: skip
    async def put_retention(
        tenant_id: TenantIdPath, body: TenantRetentionBody
    ) -> TenantRetentionBody:
        """Set how long the tenant's data is kept (operator or the tenant's admin)."""
        await store.tenant(tenant_id)
        await retention.put_policy(store.engine, tenant_id, retention.RetentionPolicy(
            body.events_days, body.transcripts_days, body.recordings_days, body.contacts_days
        ))  # fmt: skip
        return body

    @router.get("/{tenant_id}/retention", response_model=TenantRetentionBody,
                dependencies=[manager])  # fmt: skip
    async def get_retention(tenant_id: TenantIdPath) -> TenantRetentionBody:
        """How long the tenant's data is kept (null: for ever)."""
        await store.tenant(tenant_id)
        policy = await retention.get_policy(store.engine, tenant_id)
        return TenantRetentionBody(
            events_days=policy.events_days,
            transcripts_days=policy.transcripts_days,
            recordings_days=policy.recordings_days,
            contacts_days=policy.contacts_days,
        )

    @router.post(
        "/{tenant_id}/keys", status_code=201, response_model=KeyCreated, dependencies=[manager]
    )
    async def create_key(tenant_id: TenantIdPath, body: KeyCreate) -> KeyCreated:
        """Create an API key; its token is in this response only."""
        new = keys.new_key()
        rate = body.rate_limit_per_minute or edge.default_rate_limit
        stored = await store.add_key(
            tenant_id, new, body.name, frozenset(s.value for s in body.scopes), rate
        )
        log.info("api key created", extra={"key_id": stored.key_id, "tenant_id": tenant_id})
        return KeyCreated(**_key(stored).model_dump(), token=new.token)

    @router.get("/{tenant_id}/keys", response_model=list[KeyOut], dependencies=[manager])
    async def list_keys(tenant_id: TenantIdPath) -> list[KeyOut]:
        """The tenant's keys, revoked ones included (no secrets)."""
        await store.tenant(tenant_id)
        return [_key(k) for k in await store.keys(tenant_id)]

    @router.delete("/{tenant_id}/keys/{key_id}", response_model=KeyOut, dependencies=[manager])
    async def revoke_key(tenant_id: TenantIdPath, key_id: KeyIdPath) -> KeyOut:
        """Revoke a key: from now on it is refused (401) on every edge instance."""
        revoked = await store.revoke_key(tenant_id, key_id)
        log.info("api key revoked", extra={"key_id": key_id, "tenant_id": tenant_id})
        return _key(revoked)

    def _provider(name: str) -> str:
        if name not in edge.providers:
            known = ", ".join(sorted(edge.providers))
            raise ApiError(
                422,
                "invalid_request",
                f"provider: unknown provider {name!r} (known: {known})",
                fields=[FieldProblem(field="provider", message="unknown provider")],
            )
        return name

    @router.put("/{tenant_id}/accounts/{provider}", response_model=AccountOut)
    async def put_account(
        tenant_id: TenantIdPath,
        provider: ProviderPath,
        body: AccountPut,
        who: Principal = manager,
    ) -> AccountOut:
        """Store the tenant's credentials for a provider (encrypted; secrets never shown).

        ``fields.api_base_url`` is the operator's alone (403 for a tenant's key), and only
        to a host of ``VB_EDGE_PROVIDER_API_HOSTS`` (422 otherwise).
        """
        refusal = check_account_fields(
            body.fields, operator=who.operator, allowed_hosts=edge.provider_api_hosts
        )
        if refusal is not None:
            code = "operator_only" if refusal.status == 403 else "invalid_request"
            raise ApiError(
                refusal.status,
                code,
                f"{refusal.field}: {refusal.message}",
                fields=[FieldProblem(field=refusal.field, message=refusal.message)],
            )
        info = await store.put_account(tenant_id, _provider(provider), body.secrets, body.fields)
        log.info("provider account stored", extra={"tenant_id": tenant_id, "provider": provider})
        return _account(info)

    @router.get(
        "/{tenant_id}/accounts/{provider}", response_model=AccountOut, dependencies=[manager]
    )
    async def get_account(tenant_id: TenantIdPath, provider: ProviderPath) -> AccountOut:
        """Which credentials are set, and the non-secret settings."""
        return _account(await store.account_info(tenant_id, _provider(provider)))

    @router.delete("/{tenant_id}/accounts/{provider}", status_code=204, dependencies=[manager])
    async def delete_account(tenant_id: TenantIdPath, provider: ProviderPath) -> Response:
        """Forget the tenant's credentials for a provider."""
        await store.delete_account(tenant_id, _provider(provider))
        return Response(status_code=204)

    return router
