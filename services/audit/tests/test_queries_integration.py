"""Audit's answers to the REST edge, on real NATS and PostgreSQL: tenant-scoped, paged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from voicebus.audit.app import build
from voicebus.audit.settings import AuditSettings
from voicebus.contracts.events import (
    CallAnalyzed,
    CallAnalyzedData,
    CallEnded,
    CallEndedData,
    CallInitiated,
    CallInitiatedData,
    CallRinging,
    CallRingingData,
    Direction,
    EndReason,
    SuccessEvaluation,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import (
    CALL_EVENTS_LIST,
    CALLS_GET,
    CALLS_LIST,
    CallEventsPage,
    CallReply,
    CallsPage,
    GetCall,
    ListCallEvents,
    ListCalls,
)
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit(
    embedded_nats_factory: Callable[..., Any], database_url: str
) -> AsyncIterator[tuple[Service, Client]]:
    server = embedded_nats_factory()
    settings = AuditSettings(nats_url=server.url, database_url=database_url, instance_id="q1")
    service, _app = build(settings)
    await service.start()
    nc = await nats.connect(server.url)
    yield service, nc
    await nc.drain()
    await service.stop()


async def ask(nc: Client, subject: str, request: Any, reply_type: type[Any]) -> Any:
    msg = await nc.request(subject, request.model_dump_json().encode(), timeout=10)
    return reply_type.model_validate_json(msg.data)


async def stored_calls(nc: Client, tenant: str, want: int) -> CallsPage:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        page: CallsPage = await ask(
            nc, CALLS_LIST, ListCalls(tenant_id=tenant, limit=200), CallsPage
        )
        if len(page.calls) >= want or asyncio.get_running_loop().time() > deadline:
            return page
        await asyncio.sleep(0.05)


async def test_calls_are_listed_newest_first_in_pages_and_only_for_their_tenant(
    audit: tuple[Service, Client],
) -> None:
    service, nc = audit
    acme = [new_id() for _ in range(5)]
    globex = new_id()
    for tenant, call_id in [*(("acme", c) for c in acme), ("globex", globex)]:
        await publish_event(
            service.broker,
            CallRinging(tenant_id=tenant, call_id=call_id, source="t/1", data=CallRingingData()),
        )
    everything = await stored_calls(nc, "acme", 5)
    await stored_calls(nc, "globex", 1)
    assert [c.call_id for c in everything.calls] == sorted(acme, reverse=True)
    assert everything.next_before is None

    first: CallsPage = await ask(nc, CALLS_LIST, ListCalls(tenant_id="acme", limit=2), CallsPage)
    assert [c.call_id for c in first.calls] == sorted(acme, reverse=True)[:2]
    assert first.next_before == first.calls[-1].call_id
    rest: CallsPage = await ask(
        nc, CALLS_LIST, ListCalls(tenant_id="acme", limit=10, before=first.next_before), CallsPage
    )
    assert [c.call_id for c in rest.calls] == sorted(acme, reverse=True)[2:]

    ringing: CallsPage = await ask(
        nc, CALLS_LIST, ListCalls(tenant_id="acme", status="ended"), CallsPage
    )
    assert ringing.calls == []

    theirs = await ask(nc, CALLS_GET, GetCall(tenant_id="acme", call_id=globex), CallReply)
    assert not theirs.ok
    assert theirs.error is not None
    assert theirs.error.status == 404
    mine = await ask(nc, CALLS_GET, GetCall(tenant_id="globex", call_id=globex), CallReply)
    assert mine.call is not None
    assert mine.call.status == "ringing"


async def test_calls_are_filtered_by_agent_direction_provider_reason_number_and_time(
    audit: tuple[Service, Client],
) -> None:
    service, nc = audit
    ids = {name: new_id() for name in ("sales_in", "sales_out", "support_in", "theirs")}

    def initiated(tenant: str, call_id: str, agent: str, direction: Direction, provider: str,
                  caller: str) -> CallInitiated:  # fmt: skip
        data = CallInitiatedData(direction=direction, provider=provider, agent_id=agent,
                                 from_number=caller, to_number="+14155550199")  # fmt: skip
        return CallInitiated(tenant_id=tenant, call_id=call_id, source="t/1", data=data)

    for event in (
        initiated("acme", ids["sales_in"], "sales", Direction.INBOUND, "twilio", "+14155550101"),
        initiated("acme", ids["sales_out"], "sales", Direction.OUTBOUND, "plivo", "+14155550102"),
        initiated("acme", ids["support_in"], "support", Direction.INBOUND, "twilio", "+1415555010"),
        initiated("globex", ids["theirs"], "sales", Direction.INBOUND, "twilio", "+14155550101"),
        CallEnded(tenant_id="acme", call_id=ids["sales_in"], source="t/1",
                  data=CallEndedData(reason=EndReason.IDLE, duration_s=1.0)),
    ):  # fmt: skip
        await publish_event(service.broker, event)
    await stored_calls(nc, "globex", 1)
    deadline = asyncio.get_running_loop().time() + 30
    while not any(c.ended_reason for c in (await stored_calls(nc, "acme", 3)).calls):
        assert asyncio.get_running_loop().time() < deadline, "the call.ended was not stored"
        await asyncio.sleep(0.05)

    async def listed(**filters: Any) -> set[str]:
        request = ListCalls(tenant_id="acme", **filters)
        page: CallsPage = await ask(nc, CALLS_LIST, request, CallsPage)
        names = {v: k for k, v in ids.items()}
        return {names[c.call_id] for c in page.calls}

    assert await listed(agent_id="sales") == {"sales_in", "sales_out"}  # not globex's
    assert await listed(direction="inbound") == {"sales_in", "support_in"}
    assert await listed(provider="plivo") == {"sales_out"}
    assert await listed(ended_reason="idle") == {"sales_in"}
    assert await listed(phone="+14155550102") == {"sales_out"}
    assert await listed(phone="+14155550199") == {"sales_in", "sales_out", "support_in"}
    assert await listed(agent_id="sales", direction="outbound") == {"sales_out"}
    now = datetime.now(UTC)
    assert await listed(since=now - timedelta(hours=1)) == {"sales_in", "sales_out", "support_in"}
    assert await listed(since=now + timedelta(hours=1)) == set()
    assert await listed(until=now - timedelta(hours=1)) == set()


async def test_events_are_paged_in_order_and_another_tenant_gets_404(
    audit: tuple[Service, Client],
) -> None:
    service, nc = audit
    call_id = new_id()
    env = {"tenant_id": "acme", "call_id": call_id, "source": "t/1"}
    events = [CallRinging(**env, data=CallRingingData()) for _ in range(4)]
    events.append(CallEnded(**env, data=CallEndedData(reason="caller_hangup", duration_s=2.0)))
    for event in events:
        await publish_event(service.broker, event)
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # audit stores in batches: wait for all five before paging
        everything = await ask(
            nc, CALL_EVENTS_LIST, ListCallEvents(tenant_id="acme", call_id=call_id), CallEventsPage
        )
        if len(everything.events) == len(events) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)

    ids: list[str] = []
    after: str | None = None
    for _ in range(50):
        page: CallEventsPage = await ask(
            nc,
            CALL_EVENTS_LIST,
            ListCallEvents(tenant_id="acme", call_id=call_id, limit=2, after=after),
            CallEventsPage,
        )
        ids += [e.id for e in page.events]
        if len(ids) == len(events) and page.next_after is None:
            break
        after = page.next_after if page.next_after is not None else after
    assert ids == [e.id for e in events]

    other: CallEventsPage = await ask(
        nc, CALL_EVENTS_LIST, ListCallEvents(tenant_id="globex", call_id=call_id), CallEventsPage
    )
    assert other.error is not None
    assert other.error.status == 404
    bad = await nc.request(CALLS_LIST, b'{"tenant_id": "a.b"}', timeout=10)
    invalid = CallsPage.model_validate_json(bad.data).error
    assert invalid is not None
    assert (invalid.status, invalid.code) == (422, "invalid_request")
    assert "tenant_id" in invalid.message
    garbage = await nc.request(CALLS_LIST, b"{not json", timeout=10)
    assert CallsPage.model_validate_json(garbage.data).error.status == 400  # type: ignore[union-attr]


async def test_one_call_carries_its_analysis_and_only_to_its_tenant(
    audit: tuple[Service, Client],
) -> None:
    service, nc = audit
    call_id = new_id()
    env = {"tenant_id": "acme", "call_id": call_id, "source": "t/1"}
    data = CallAnalyzedData(
        agent_id="support", agent_version=2, ok=True, summary="Order 1234 has shipped.",
        extraction={"order_id": "1234"}, success=SuccessEvaluation(passed=True, reason="told"),
        disposition="resolved", engine="scripted", transcript_turns=4,
    )  # fmt: skip
    await publish_event(service.broker, CallEnded(**env, data=CallEndedData(reason="agent_hangup")))
    await publish_event(service.broker, CallAnalyzed(**env, data=data))
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        reply = await ask(nc, CALLS_GET, GetCall(tenant_id="acme", call_id=call_id), CallReply)
        if (reply.call and reply.call.analysis) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert reply.call is not None
    assert reply.call.status == "ended"
    assert reply.call.analysis == data

    theirs = await ask(nc, CALLS_GET, GetCall(tenant_id="globex", call_id=call_id), CallReply)
    assert theirs.call is None
    assert theirs.error is not None
    assert theirs.error.status == 404
