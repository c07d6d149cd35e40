"""The stored accounts as the gateway's providers see them (``Gateway.accounts``)."""

from __future__ import annotations

from pydantic import SecretStr

from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.tenancy.store import TenantStore


class StoredAccounts:
    """``AccountStore`` over the tenancy store: decrypts on every read (no plaintext cache).

    Args:
        store: the tenancy store; while it has no database every lookup finds nothing,
            so the environment's default account still serves the default tenant.
    """

    def __init__(self, store: TenantStore) -> None:
        self._store = store

    async def get(self, tenant_id: str, provider: str) -> ProviderAccount | None:
        """The tenant's stored account with ``provider``, or None."""
        if not self._store.bound:
            return None
        stored = await self._store.account(tenant_id, provider)
        if stored is None:
            return None
        secrets, fields = stored
        return ProviderAccount(
            provider=provider,
            tenant_id=tenant_id,
            secrets={name: SecretStr(value) for name, value in secrets.items()},
            fields=fields,
        )
