"""Tenants' provider accounts, asked of the edge (``vb.rpc.edge.accounts.get``), cached briefly.

The edge owns tenants and their encrypted credentials; the gateway keeps no database.
An answer (an account, or "none stored") is reused for ``VB_GATEWAY_ACCOUNT_CACHE_TTL_S``
seconds, so a dial, its callbacks and a transfer of the call ask once, and a change
made at the edge reaches the gateway within that time. Lookups of one account at the
same moment share one request.

Stale if error: when the edge cannot answer (not running, too slow, a 5xx such as its
database being down), the last answer it gave is used instead for up to
``VB_GATEWAY_ACCOUNT_STALE_S`` seconds past its TTL (logged, and counted in
``voicebus_gateway_account_stale_served_total``), so a call's callbacks are still
checked with the tenant's own account and its outcome is not lost. Only when there is
no such answer does :class:`AccountsUnavailableError` say the account cannot be read.
A change made at the edge still reaches the gateway within the TTL whenever the edge
answers.

Credentials live only in this process's memory, never on disk: an account is never
used later than TTL + stale seconds after the edge last handed it out (30 s + 1 hour by
default), and leaves memory at the next lookup after that, or earlier when more than
``VB_GATEWAY_ACCOUNT_CACHE_SIZE`` accounts are held.
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
from voicebus.gateway.metrics import StaleReason, count_stale_account
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.ttl_cache import TtlCache
from voicebus.runtime.rpc import (
    OwnerTimeout,
    OwnerUnavailable,
    RemoteError,
    RpcClient,
    RpcFault,
)

log = logging.getLogger(__name__)

_Key = tuple[str, str]


API_BASE_URL: Final = "api_base_url"


class EdgeAccounts:
    """``AccountStore`` that asks the edge and caches what it said.

    Args:
        client: request/reply on the gateway's connection.
        ttl_s: how long an answer is reused (0: never).
        stale_s: how long past ``ttl_s`` an answer is still used when the edge cannot
            answer (0: never; the lookup fails instead).
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
        stale_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        api_hosts: Collection[str] | None = None,
    ) -> None:
        self._api_hosts = None if api_hosts is None else {h.lower() for h in api_hosts}
        self._client = client
        self._cache: TtlCache[_Key, ProviderAccount | None] = TtlCache(
            ttl_s, max_entries, clock, stale_s
        )
        self._asking: dict[_Key, asyncio.Future[ProviderAccount | None]] = {}

    async def get(self, tenant_id: str, provider: str) -> ProviderAccount | None:
        """The tenant's stored account with ``provider``, or None if it has none.

        The last answer, if not too stale, when the edge cannot answer now.

        Raises:
            AccountsUnavailableError: the edge could not be asked and has not answered
                within the stale bound.
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
            if refused.status == 404:
                self._cache.put(key, None)
                return None
            if refused.status < 500:
                # The edge refused (the tenant is disabled): not an outage. The old answer
                # goes too, so a later outage never brings it back.
                self._cache.discard(key)
                raise _unavailable(tenant_id, provider, refused.code) from None
            return self._stale(key, StaleReason.EDGE_ERROR, refused.code)
        except OwnerTimeout as fault:
            return self._stale(key, StaleReason.TIMEOUT, fault.code)
        except OwnerUnavailable as fault:
            return self._stale(key, StaleReason.UNREACHABLE, fault.code)
        except RpcFault as fault:  # a reply that is not an AccountReply
            return self._stale(key, StaleReason.EDGE_ERROR, fault.code)
        if reply.account is None:
            return self._stale(key, StaleReason.EDGE_ERROR, "no_account_in_reply")
        account = _provider_account(reply.account, self._api_hosts)
        self._cache.put(key, account)
        return account

    def _stale(self, key: _Key, reason: StaleReason, code: str) -> ProviderAccount | None:
        """The last answer if kept (fresh or stale), else :class:`AccountsUnavailableError`."""
        tenant_id, provider = key
        hit, account, age_s = self._cache.get_stale(key)
        if not hit:
            raise _unavailable(tenant_id, provider, code)
        count_stale_account(provider, reason)
        log.warning(
            "edge unavailable: last provider account answer used",
            extra={"tenant_id": tenant_id, "provider": provider, "why": code,
                   "age_s": round(age_s, 1), "stored": account is not None},
        )  # fmt: skip
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
