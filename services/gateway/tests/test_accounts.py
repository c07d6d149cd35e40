"""Tenants' provider accounts as the gateway sees them: asked of the edge, cached briefly.

Unit tests: a fake requester speaks the request/reply contract, a fake clock moves time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import nats.errors
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from voicebus.contracts.rpc import RpcError
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount, StoredAccount
from voicebus.gateway.accounts import EdgeAccounts
from voicebus.gateway.context import AccountsUnavailableError, Gateway, UnknownAccountError
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.ttl_cache import TtlCache
from voicebus.runtime.rpc import RpcClient
from voicebus.runtime.service import Service

pytestmark = pytest.mark.unit

SECRET = "tw-auth-token-never-logged-8c1d"


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Msg:
    data: bytes


class FakeEdge:
    """Answers ``vb.rpc.edge.accounts.get`` from a table, as the edge would; counts requests."""

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], StoredAccount] = {}
        self.asked: list[GetAccount] = []
        self.down = False
        self.failing: RpcError | None = None
        self.gate: asyncio.Event | None = None
        self.silent = False

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        old_style: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> Msg:
        assert subject == ACCOUNTS_GET
        if self.down:
            raise nats.errors.NoRespondersError
        request = GetAccount.model_validate_json(payload)
        self.asked.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.silent:  # nobody answers within the attempt's time
            await asyncio.sleep(timeout)
            raise TimeoutError
        if self.failing is not None:
            reply = AccountReply(ok=False, error=self.failing)
        elif (account := self.accounts.get((request.tenant_id, request.provider))) is not None:
            reply = AccountReply(ok=True, account=account)
        else:
            error = RpcError(status=404, code="account_not_found", message="no account")
            reply = AccountReply(ok=False, error=error)
        return Msg(reply.model_dump_json().encode())


def stored(tenant: str = "acme", token: str = SECRET) -> StoredAccount:
    return StoredAccount(
        tenant_id=tenant,
        provider="twilio",
        fields={"account_id": "AC1", "caller_id": "+14155550100"},
        secrets={"auth_token": SecretStr(token)},
    )


@pytest.fixture
def edge() -> FakeEdge:
    return FakeEdge()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(edge: FakeEdge, clock: Clock) -> EdgeAccounts:
    return EdgeAccounts(RpcClient(edge, timeout_s=0.2), ttl_s=30, max_entries=8, clock=clock)


# -- the cache --------------------------------------------------------------------------


def test_a_cache_entry_is_served_until_its_ttl_then_dropped() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl_s=30, max_entries=4, clock=clock)
    cache.put("a", 1)
    clock.now += 29.9
    assert cache.get("a") == (True, 1)
    clock.now += 0.1
    assert cache.get("a") == (False, None)
    assert len(cache) == 0


def test_a_full_cache_drops_the_least_recently_stored() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl_s=30, max_entries=2, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # stored again: now the newest
    cache.put("c", 4)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 3)
    assert cache.get("c") == (True, 4)
    assert len(cache) == 2
    cache.discard("a")
    assert cache.get("a") == (False, None)


def test_an_expired_entry_is_kept_stale_for_its_stale_time_then_dropped() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl_s=30, max_entries=4, clock=clock, stale_s=60)
    cache.put("a", 1)
    clock.now += 10
    cache.put("b", 2)
    assert cache.get_stale("a") == (True, 1, 10.0)  # fresh entries are served too
    clock.now += 20
    assert cache.get("a") == (False, None)
    assert cache.get_stale("a") == (True, 1, 30.0)
    assert cache.get("b") == (True, 2)
    clock.now += 59.9
    assert cache.get_stale("a") == (True, 1, pytest.approx(89.9))
    clock.now += 0.1
    assert cache.get_stale("a") == (False, None, 0.0)
    assert len(cache) == 1  # "a" is gone from memory, "b" is still stale
    clock.now += 10
    assert cache.get_stale("b") == (False, None, 0.0)
    assert len(cache) == 0


def test_entries_past_their_stale_time_leave_memory_on_any_use() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl_s=1, max_entries=4, clock=clock, stale_s=1)
    cache.put("a", 1)
    cache.put("b", 2)
    clock.now += 2
    cache.put("c", 3)  # a put drops what is dead, not only lookups of the same key
    assert len(cache) == 1


def test_a_cache_refuses_a_size_of_zero() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TtlCache(ttl_s=1, max_entries=0, clock=Clock())


# -- asking the edge --------------------------------------------------------------------


async def test_an_account_is_asked_once_per_ttl(
    accounts: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    first = await accounts.get("acme", "twilio")
    assert first is not None
    assert first.secret("auth_token") == SECRET
    assert first.require("account_id") == "AC1"
    assert SECRET not in repr(first)
    clock.now += 29
    assert await accounts.get("acme", "twilio") == first
    assert len(edge.asked) == 1
    clock.now += 1
    edge.accounts["acme", "twilio"] = stored(token="rotated-token-5a9e")
    again = await accounts.get("acme", "twilio")
    assert again is not None
    assert again.secret("auth_token") == "rotated-token-5a9e"
    assert len(edge.asked) == 2


async def test_no_stored_account_is_none_and_cached_too(
    accounts: EdgeAccounts, edge: FakeEdge
) -> None:
    assert await accounts.get("globex", "twilio") is None
    assert await accounts.get("globex", "twilio") is None
    assert [(r.tenant_id, r.provider) for r in edge.asked] == [("globex", "twilio")]
    accounts.forget("globex", "twilio")
    edge.accounts["globex", "twilio"] = stored("globex")
    assert await accounts.get("globex", "twilio") is not None


async def test_an_edge_that_cannot_answer_is_unavailable_and_nothing_is_cached(
    accounts: EdgeAccounts, edge: FakeEdge
) -> None:
    edge.down = True
    with pytest.raises(AccountsUnavailableError) as unavailable:
        await accounts.get("acme", "twilio")
    assert unavailable.value.retryable
    edge.down = False
    edge.failing = RpcError(status=503, code="database_unavailable", message="db down")
    with pytest.raises(AccountsUnavailableError):
        await accounts.get("acme", "twilio")
    edge.failing = None
    edge.accounts["acme", "twilio"] = stored()
    assert await accounts.get("acme", "twilio") is not None  # asked again: nothing was cached


async def test_lookups_at_the_same_moment_share_one_request(
    accounts: EdgeAccounts, edge: FakeEdge
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    edge.gate = asyncio.Event()
    waiting = [asyncio.create_task(accounts.get("acme", "twilio")) for _ in range(5)]
    await asyncio.sleep(0.01)
    edge.gate.set()
    results = await asyncio.gather(*waiting)
    assert len(edge.asked) == 1
    assert all(r is results[0] for r in results)


async def test_a_name_that_is_not_a_tenant_id_is_never_asked(
    accounts: EdgeAccounts, edge: FakeEdge
) -> None:
    assert await accounts.get("not.a.tenant", "twilio") is None
    assert edge.asked == []


# -- stale if error ----------------------------------------------------------------------

STALE_S = 600


@pytest.fixture
def stale(edge: FakeEdge, clock: Clock) -> EdgeAccounts:
    """Accounts reused 30 s, and up to ``STALE_S`` more while the edge cannot answer."""
    client = RpcClient(edge, timeout_s=0.2)
    return EdgeAccounts(client, ttl_s=30, max_entries=8, clock=clock, stale_s=STALE_S)


def stale_served(reason: str) -> float:
    labels = {"provider": "twilio", "reason": reason}
    return REGISTRY.get_sample_value("voicebus_gateway_account_stale_served_total", labels) or 0.0


@pytest.mark.parametrize("outage", ["down", "database_down", "silent"])
async def test_the_last_answer_is_served_after_its_ttl_while_the_edge_fails(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock, outage: str
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    assert await stale.get("acme", "twilio") is not None
    reason = {"down": "unreachable", "database_down": "edge_error", "silent": "timeout"}[outage]
    before = stale_served(reason)
    if outage == "down":
        edge.down = True
    elif outage == "database_down":
        edge.failing = RpcError(status=503, code="database_unavailable", message="db down")
    else:
        edge.silent = True
    clock.now += 30 + STALE_S - 1
    account = await stale.get("acme", "twilio")
    assert account is not None
    assert account.secret("auth_token") == SECRET
    assert stale_served(reason) == before + 1
    asked = len(edge.asked)
    assert await stale.get("acme", "twilio") is account  # the edge is asked again every time
    assert len(edge.asked) > asked or outage == "down"  # (down: nothing reaches the edge)
    assert stale_served(reason) == before + 2


async def test_the_last_answer_is_not_served_past_the_stale_bound(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    assert await stale.get("acme", "twilio") is not None
    edge.down = True
    clock.now += 30 + STALE_S
    with pytest.raises(AccountsUnavailableError) as unavailable:
        await stale.get("acme", "twilio")
    assert unavailable.value.retryable
    clock.now -= 1  # the clock never goes back; the answer left memory for good
    with pytest.raises(AccountsUnavailableError):
        await stale.get("acme", "twilio")


async def test_no_stale_answer_means_unavailable(stale: EdgeAccounts, edge: FakeEdge) -> None:
    edge.failing = RpcError(status=503, code="database_unavailable", message="db down")
    with pytest.raises(AccountsUnavailableError):
        await stale.get("acme", "twilio")


async def test_none_stored_is_cached_as_none_and_served_stale_too(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    before = stale_served("edge_error")
    assert await stale.get("default", "twilio") is None  # a 404: a normal answer
    assert await stale.get("default", "twilio") is None
    assert len(edge.asked) == 1
    edge.failing = RpcError(status=503, code="database_unavailable", message="db down")
    clock.now += 31
    assert await stale.get("default", "twilio") is None  # not AccountsUnavailableError
    assert len(edge.asked) == 2
    assert stale_served("edge_error") == before + 1


async def test_a_successful_refresh_replaces_the_stale_answer(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    assert await stale.get("acme", "twilio") is not None
    edge.down = True
    clock.now += 40
    first = await stale.get("acme", "twilio")
    assert first is not None
    assert first.secret("auth_token") == SECRET
    edge.down = False
    edge.accounts["acme", "twilio"] = stored(token="rotated-token-5a9e")
    refreshed = await stale.get("acme", "twilio")
    assert refreshed is not None
    assert refreshed.secret("auth_token") == "rotated-token-5a9e"
    edge.down = True
    clock.now += 30 + STALE_S - 1  # stale bound counted from the refresh, not the first answer
    again = await stale.get("acme", "twilio")
    assert again is not None
    assert again.secret("auth_token") == "rotated-token-5a9e"
    edge.down = False
    del edge.accounts["acme", "twilio"]  # the account was deleted at the edge: a 404
    assert await stale.get("acme", "twilio") is None
    edge.down = True
    clock.now += 31
    assert await stale.get("acme", "twilio") is None  # the newest answer, "none stored"


async def test_a_refusal_by_the_edge_drops_the_stale_answer(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    assert await stale.get("acme", "twilio") is not None
    clock.now += 31
    edge.failing = RpcError(status=403, code="tenant_disabled", message="disabled")
    with pytest.raises(AccountsUnavailableError):
        await stale.get("acme", "twilio")
    edge.failing = None
    edge.down = True  # an outage after the refusal never brings the old account back
    with pytest.raises(AccountsUnavailableError):
        await stale.get("acme", "twilio")


async def test_a_stale_bound_of_zero_serves_nothing_stale(edge: FakeEdge, clock: Clock) -> None:
    client = RpcClient(edge, timeout_s=0.2)
    accounts = EdgeAccounts(client, ttl_s=30, max_entries=8, clock=clock, stale_s=0)
    edge.accounts["acme", "twilio"] = stored()
    assert await accounts.get("acme", "twilio") is not None
    edge.down = True
    clock.now += 30
    with pytest.raises(AccountsUnavailableError):
        await accounts.get("acme", "twilio")


async def test_lookups_at_the_same_moment_share_one_failing_request_and_its_stale_answer(
    stale: EdgeAccounts, edge: FakeEdge, clock: Clock
) -> None:
    edge.accounts["acme", "twilio"] = stored()
    first = await stale.get("acme", "twilio")
    clock.now += 31
    edge.failing = RpcError(status=503, code="database_unavailable", message="db down")
    edge.gate = asyncio.Event()
    waiting = [asyncio.create_task(stale.get("acme", "twilio")) for _ in range(5)]
    await asyncio.sleep(0.01)
    edge.gate.set()
    results = await asyncio.gather(*waiting)
    assert len(edge.asked) == 2  # the first answer, then one shared failing request
    assert all(r is first for r in results)


# -- which account a dial uses ----------------------------------------------------------


class FakeStore:
    """An ``AccountStore`` with fixed answers."""

    def __init__(self, accounts: dict[str, ProviderAccount], *, down: bool = False) -> None:
        self.accounts = accounts
        self.down = down

    async def get(self, tenant_id: str, provider: str) -> ProviderAccount | None:
        if self.down:
            raise AccountsUnavailableError("the edge does not answer")
        return self.accounts.get(tenant_id)


def gateway(store: FakeStore) -> Gateway:
    settings = GatewaySettings(twilio_auth_token=SecretStr("env-token-0123456789"))
    return Gateway(Service(settings), settings, accounts=store)


def tenant_account(tenant: str) -> ProviderAccount:
    return ProviderAccount(
        provider="twilio", tenant_id=tenant, secrets={"auth_token": SecretStr(f"{tenant}-token")}
    )


async def test_a_stored_account_comes_first_the_environment_serves_the_default_tenant() -> None:
    gw = gateway(FakeStore({"default": tenant_account("default"), "acme": tenant_account("acme")}))
    assert (await gw.account("acme", "twilio")).secret("auth_token") == "acme-token"
    assert (await gw.account("default", "twilio")).secret("auth_token") == "default-token"
    bare = gateway(FakeStore({}))
    assert (await bare.account("default", "twilio")).secret("auth_token") == "env-token-0123456789"
    with pytest.raises(UnknownAccountError) as unknown:
        await bare.account("acme", "twilio")
    assert not unknown.value.retryable
    assert not isinstance(unknown.value, AccountsUnavailableError)
    with pytest.raises(UnknownAccountError, match="no telephony provider"):
        await bare.account("default", "nosuch")


async def test_while_the_edge_is_down_only_the_default_tenant_keeps_calling() -> None:
    gw = gateway(FakeStore({"acme": tenant_account("acme")}, down=True))
    default = await gw.account("default", "twilio")
    assert default.secret("auth_token") == "env-token-0123456789"
    with pytest.raises(AccountsUnavailableError) as unavailable:
        await gw.account("acme", "twilio")
    assert unavailable.value.retryable


async def test_a_stored_api_base_url_outside_the_allowed_hosts_is_not_used(
    edge: FakeEdge, clock: Clock
) -> None:
    accounts = EdgeAccounts(RpcClient(edge, timeout_s=0.2), ttl_s=30, max_entries=8,
                            clock=clock, api_hosts=["api.twilio.com"])  # fmt: skip
    for tenant, url in (("evil", "http://169.254.169.254/latest"),
                        ("good", "https://api.twilio.com/2010-04-01")):  # fmt: skip
        account = stored(tenant)
        edge.accounts[(tenant, "twilio")] = account.model_copy(
            update={"fields": {**account.fields, "api_base_url": url}}
        )
    evil = await accounts.get("evil", "twilio")
    good = await accounts.get("good", "twilio")
    assert evil is not None
    assert good is not None
    assert "api_base_url" not in evil.fields  # the provider's own API: secrets stay there
    assert evil.fields["account_id"] == "AC1"
    assert good.fields["api_base_url"] == "https://api.twilio.com/2010-04-01"
