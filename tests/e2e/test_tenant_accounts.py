"""A tenant's own provider account, end to end: stored at the edge over its REST API, fetched
by the gateway over the bus (``vb.rpc.edge.accounts.get``) when it dials, and reused from the
gateway's cache for the next dial while the edge is stopped.

Every service runs as its own process on a real NATS and PostgreSQL; the devkit's stand-in
Twilio API accepts only the tenant's account (Basic auth with its Account SID and Auth
Token) and signs its callbacks with that token, so a dial or a callback checked with any
other credentials fails.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallError, CallEvent, EndReason, parse_event
from voicebus.contracts.ids import new_id
from voicebus.devkit.carriers.base import wait_for_hangup
from voicebus.devkit.carriers.twilio import TwilioCarrier
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = "dev-secret"  # the development placeholder the dev edge accepts
ACME_SID = "AC" + "7" * 32
ACME_TOKEN = "acme-own-twilio-auth-token-3e91c0"
ACME_CALLER_ID = "+14155550177"
BUSY = "+14155550002"
ASKED = re.compile(r"^voicebus_rpc_asked_total\{([^}]*)\} (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
async def carrier() -> AsyncIterator[TwilioCarrier]:
    """Twilio's API for acme's account only; its gateway address is set once the stack runs."""
    stand_in = TwilioCarrier(
        account_sid=ACME_SID, auth_token=ACME_TOKEN, gateway_url="http://127.0.0.1:1",
        callee=wait_for_hangup(),
    )  # fmt: skip
    yield stand_in
    await stand_in.stop()


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, carrier: TwilioCarrier
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    # Long enough that the cached account outlives a slow machine's steps below.
    env = {"VB_GATEWAY_ACCOUNT_CACHE_TTL_S": "900"}
    dev = DevStack(
        data_dir, out=log, local_llm=False, env=env, services=("gateway", "orchestrator", "edge")
    )
    try:
        await dev.start(ready_timeout=240.0)
        carrier.gateway_url = carrier.public_url = _url(dev, "gateway")
        await carrier.start()
        yield dev
        # Nothing any service did was outside what its NATS user is allowed.
        assert dev.permission_violations() == []
    finally:
        await dev.stop()
        log.close()


def _url(stack: DevStack, service: str) -> str:
    return next(s.url for s in stack.services if s.name == service)


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.evt_filter(call_id=call_id),
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.drain()
    return events


async def _ended(nats_url: str, call_id: str) -> tuple[CallEnded, list[CallEvent]]:
    async with asyncio.timeout(120):
        while True:
            events = await _events_of(nats_url, call_id)
            ended = [e for e in events if isinstance(e, CallEnded)]
            if ended:
                return ended[0], events
            await asyncio.sleep(0.5)


async def _originate(nats_url: str, tenant: str) -> str:
    """What a campaign does: the command on the bus, no edge involved."""
    command = OriginateCall(
        tenant_id=tenant, call_id=new_id(), source="test/e2e",
        data=OriginateCallData(agent_id="demo-scripted", to_number=BUSY, provider="twilio"),
    )  # fmt: skip
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(
            command.subject, command.to_bytes(), headers={"Nats-Msg-Id": command.id}
        )
    finally:
        await nc.drain()
    return command.call_id


async def _account_lookups(gateway: str) -> dict[str, float]:
    """The gateway's ``vb.rpc.edge.accounts.get`` requests so far, by outcome."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{gateway}/metrics")).text
    counts: dict[str, float] = {}
    for labels, value in ASKED.findall(text):
        if 'rpc="edge.accounts.get"' in labels:
            outcome = re.search(r'outcome="([^"]+)"', labels)
            assert outcome is not None
            counts[outcome.group(1)] = float(value)
    return counts


async def _store_acme_account(edge: str, api_base_url: str) -> dict[str, str]:
    """Tenant acme, an admin key, and its Twilio account (the stand-in as its REST base URL)."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=f"{edge}/api/v1", timeout=30) as api:
        created = await api.post("/tenants", headers=admin, json={"tenant_id": "acme", "name": "A"})
        assert created.status_code == 201, created.text
        key = await api.post(
            "/tenants/acme/keys", headers=admin, json={"name": "e2e", "scopes": ["admin"]}
        )
        assert key.status_code == 201, key.text
        auth = {"Authorization": f"Bearer {key.json()['token']}"}
        account = {
            "secrets": {"auth_token": ACME_TOKEN},
            "fields": {"account_id": ACME_SID, "caller_id": ACME_CALLER_ID,
                       "api_base_url": api_base_url},
        }  # fmt: skip
        stored = await api.put("/tenants/acme/accounts/twilio", headers=auth, json=account)
        assert stored.status_code == 200, stored.text
        return auth


async def test_the_gateway_dials_with_the_tenants_account_from_the_edge_and_caches_it(
    stack: DevStack, carrier: TwilioCarrier
) -> None:
    assert stack.nats_url is not None
    gateway, edge = _url(stack, "gateway"), _url(stack, "edge")
    auth = await _store_acme_account(edge, carrier.base_url)
    async with httpx.AsyncClient(base_url=f"{edge}/api/v1", timeout=30) as api:
        # 1. Through the edge's REST API: the gateway asks the edge for acme's account.
        placed = await api.post(
            "/calls",
            headers=auth,
            json={"agent_id": "demo-scripted", "to_number": BUSY, "provider": "twilio"},
        )
    assert placed.status_code == 202, placed.text
    first, _ = await _ended(stack.nats_url, placed.json()["call_id"])
    assert first.data.reason is EndReason.BUSY
    assert len(carrier.calls) == 1
    [dialed] = carrier.calls.values()
    assert dialed.from_number == ACME_CALLER_ID  # the stored account's caller id
    await dialed.ended.wait()
    assert dialed.posted, "no status callback reached the gateway"
    assert {status for _, status in dialed.posted} == {200}  # checked with acme's token
    assert await _account_lookups(gateway) == {"ok": 1.0}

    # 2. The edge stops; the next dial of acme uses the account the gateway cached.
    process = next(s.process for s in stack.services if s.name == "edge")
    assert process is not None
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), 30)
    second, _ = await _ended(stack.nats_url, await _originate(stack.nats_url, "acme"))
    assert second.data.reason is EndReason.BUSY
    assert len(carrier.calls) == 2
    assert all(c.from_number == ACME_CALLER_ID for c in carrier.calls.values())
    assert await _account_lookups(gateway) == {"ok": 1.0}  # not asked again

    # 3. A tenant the gateway never looked up cannot be dialed while the edge is away:
    # the call fails as retryable, and nothing reaches the provider.
    third, events = await _ended(stack.nats_url, await _originate(stack.nats_url, "globex"))
    assert third.data.reason is EndReason.PROVIDER_ERROR
    errors = [e for e in events if isinstance(e, CallError)]
    assert len(errors) == 1
    assert errors[0].data.retryable
    assert len(carrier.calls) == 2
    lookups: dict[str, Any] = await _account_lookups(gateway)
    assert lookups["ok"] == 1.0
    assert lookups.get("owner_unavailable", 0) >= 1
