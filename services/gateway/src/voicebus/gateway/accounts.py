"""Tenants' provider accounts, asked of the edge (``vb.rpc.edge.accounts.get``), cached briefly.

The edge owns tenants and their encrypted credentials; the gateway keeps no database.
An answer (an account, or "none stored") is reused for ``VB_GATEWAY_ACCOUNT_CACHE_TTL_S``
seconds, so a dial, its callbacks and a transfer of the call ask once, and a change
made at the edge reaches the gateway within that time. Credentials live only in this
process's memory, only that long. Lookups of one account at the same moment share one
request. When the edge cannot be asked (not running, too slow, its database down),
nothing is cached and :class:`AccountsUnavailableError` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Final
from urllib.parse import urlsplit

from pydantic import ValidationError

from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount, StoredAccount
from voicebus.gateway.context import AccountsUnavailableError
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.ttl_cache import TtlCache
from voicebus.runtime.rpc import RemoteError, RpcClient, RpcFault

log = logging.getLogger(__name__)

_Key = tuple[str, str]


API_BASE_URL: Final = "api_base_url"


class EdgeAccounts:
    """``AccountStore`` that asks the edge and caches what it said.

    Args:
        client: request/reply on the gateway's connection.
        ttl_s: how long an answer is reused (0: never).
        max_entries: accounts kept at most (the least recently stored go first).
        clock: monotonic seconds (a fake in tests).
        api_hosts: hosts a stored account's ``api_base_url`` may name; None: any. Another
            host (a value stored before the edge checked it) is dropped, so the provider's
            own API is used: a tenant's credentials never go to a host the operator did
            not allow.
    """

    def __init__(
        self,
        client: RpcClient,
        *,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        api_hosts: Collection[str] | None = None,
    ) -> None:
        self._api_hosts = None if api_hosts is None else {h.lower() for h in api_hosts}
        self._client = client
        self._cache: TtlCache[_Key, ProviderAccount | None] = TtlCache(ttl_s, max_entries, clock)
        self._asking: dict[_Key, asyncio.Future[ProviderAccount | None]] = {}

    async def get(self, tenant_id: str, provider: str) -> ProviderAccount | None:
        """The tenant's stored account with ``provider``, or None if it has none.

        Raises:
            AccountsUnavailableError: the edge could not be asked.
        """
        key = (tenant_id, provider)
        hit, account = self._cache.get(key)
        if hit:
            return account
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(key))
            self._asking[key] = asking
            asking.add_done_callback(lambda _done: self._asking.pop(key, None))
        # Shielded: one caller giving up does not cancel the others' request.
        return await asyncio.shield(asking)

    def forget(self, tenant_id: str, provider: str) -> None:
        """Drop the cached answer for one account (the next lookup asks the edge)."""
        self._cache.discard((tenant_id, provider))

    async def _ask(self, key: _Key) -> ProviderAccount | None:
        tenant_id, provider = key
        try:
            request = GetAccount(tenant_id=tenant_id, provider=provider)
        except ValidationError:
            return None  # not a tenant id or provider name: nobody stores an account there
        try:
            reply = await self._client.ask(ACCOUNTS_GET, request, AccountReply)
        except RemoteError as refused:
            if refused.status != 404:
                raise _unavailable(tenant_id, provider, refused.code) from None
            self._cache.put(key, None)
            return None
        except RpcFault as fault:
            raise _unavailable(tenant_id, provider, fault.code) from None
        if reply.account is None:
            raise _unavailable(tenant_id, provider, "no_account_in_reply")
        account = _provider_account(reply.account, self._api_hosts)
        self._cache.put(key, account)
        return account


def _provider_account(stored: StoredAccount, api_hosts: set[str] | None) -> ProviderAccount:
    fields = dict(stored.fields)
    base = fields.get(API_BASE_URL)
    if api_hosts is not None and base is not None:
        host = (urlsplit(base).hostname or "").lower()
        if host not in api_hosts:
            del fields[API_BASE_URL]
            log.warning(
                "stored api_base_url not allowed: provider default used",
                extra={"tenant_id": stored.tenant_id, "provider": stored.provider},
            )
    return ProviderAccount(
        provider=stored.provider,
        tenant_id=stored.tenant_id,
        secrets=dict(stored.secrets),
        fields=fields,
        allowed_countries=(
            None if stored.allowed_countries is None else frozenset(stored.allowed_countries)
        ),
        max_concurrent_calls=stored.max_concurrent_calls,
    )


def _unavailable(tenant_id: str, provider: str, why: str) -> AccountsUnavailableError:
    log.warning(
        "provider account unavailable",
        extra={"tenant_id": tenant_id, "provider": provider, "why": why},
    )
    return AccountsUnavailableError(f"the {provider} account of the tenant cannot be read now")
