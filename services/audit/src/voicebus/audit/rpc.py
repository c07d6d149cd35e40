"""Audit's answers on ``vb.rpc.audit.*``: a tenant's calls, their events, their chains,
and erasing a caller's calls.

Every query names its tenant; another tenant's call is not found.
"""

from __future__ import annotations

from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit import erasure, queries, verify
from voicebus.contracts import subjects
from voicebus.contracts.chains import CHAINS_VERIFY, ChainReport, VerifyChains
from voicebus.contracts.erasure import AUDIT_ERASE, AuditErased, EraseCaller
from voicebus.contracts.events import utc_now
from voicebus.contracts.retention import (
    AUDIT_RETENTION,
    TRANSCRIPT_TYPES,
    ApplyRetention,
    RetentionApplied,
)
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
from voicebus.contracts.streams import EVENTS
from voicebus.runtime.rpc import NotFound, Unavailable, responder
from voicebus.runtime.service import Service

QUEUE_GROUP = "audit-rpc"


def register_rpc(broker: NatsBroker, service: Service) -> None:
    """Declare the queries on ``broker``; they read ``service.db`` once connected."""

    def db() -> AsyncEngine:
        if service.db is None:
            raise Unavailable("audit has no database yet", code="database_unavailable")
        return service.db

    def not_found(call_id: str) -> NotFound:
        return NotFound(f"no call {call_id!r}", code="call_not_found")

    async def calls_list(request: ListCalls) -> CallsPage:
        calls, cursor = await queries.list_calls(db(), request)
        return CallsPage(ok=True, calls=calls, next_before=cursor)

    async def calls_get(request: GetCall) -> CallReply:
        call = await queries.get_call(db(), request.tenant_id, request.call_id)
        if call is None:
            raise not_found(request.call_id)
        return CallReply(ok=True, call=call)

    async def events_list(request: ListCallEvents) -> CallEventsPage:
        if await queries.get_call(db(), request.tenant_id, request.call_id) is None:
            raise not_found(request.call_id)
        events, cursor = await queries.list_events(db(), request)
        return CallEventsPage(ok=True, events=events, next_after=cursor)

    async def chains_verify(request: VerifyChains) -> ChainReport:
        if request.call_id is not None:
            found = await verify.verify_call(db(), request.tenant_id, request.call_id)
            if found is None:
                raise not_found(request.call_id)
            return ChainReport(ok=True, results=[found])
        assert request.since is not None  # the request model requires one of the two
        ids = await verify.calls_since(
            db(), request.tenant_id, request.since, request.after, request.limit
        )
        results = []
        for call_id in ids:
            result = await verify.verify_call(db(), request.tenant_id, call_id)
            if result is not None:
                results.append(result)
        more = ids[-1] if len(ids) == request.limit else None
        return ChainReport(ok=True, results=results, next_after=more)

    async def callers_erase(request: EraseCaller) -> AuditErased:
        erased = await erasure.erase_number(db(), request.tenant_id, request.number, utc_now())
        # The stream's copies go too, so no consumer replays the erased data.
        for call_id in erased.call_ids:
            await service.js.purge_stream(
                EVENTS.name, subject=subjects.evt_filter(request.tenant_id, call_id)
            )
        return AuditErased(
            ok=True, calls=len(erased.call_ids), events=erased.events, call_ids=erased.call_ids
        )

    async def retention_apply(request: ApplyRetention) -> RetentionApplied:
        now, events, calls = utc_now(), 0, 0
        if request.transcripts_before is not None:
            events, _ = await erasure.expire(
                db(), request.tenant_id, request.transcripts_before, now, TRANSCRIPT_TYPES
            )
        if request.events_before is not None:
            more, calls = await erasure.expire(db(), request.tenant_id, request.events_before, now)
            events += more
        return RetentionApplied(ok=True, events=events, calls=calls)

    responder(broker, CALLS_LIST, ListCalls, CallsPage, calls_list, queue=QUEUE_GROUP,
              description="List a tenant's calls (ListCalls → CallsPage).")  # fmt: skip
    responder(broker, CALLS_GET, GetCall, CallReply, calls_get, queue=QUEUE_GROUP,
              description="One call of a tenant (GetCall → CallReply).")  # fmt: skip
    responder(broker, CALL_EVENTS_LIST, ListCallEvents, CallEventsPage, events_list,
              queue=QUEUE_GROUP,
              description="A call's events (ListCallEvents → CallEventsPage).")  # fmt: skip
    responder(broker, CHAINS_VERIFY, VerifyChains, ChainReport, chains_verify,
              queue=QUEUE_GROUP,
              description="Recompute calls' hash chains (VerifyChains → ChainReport).")  # fmt: skip
    responder(broker, AUDIT_ERASE, EraseCaller, AuditErased, callers_erase, queue=QUEUE_GROUP,
              description="Erase a caller's calls (EraseCaller → AuditErased).")  # fmt: skip
    responder(broker, AUDIT_RETENTION, ApplyRetention, RetentionApplied, retention_apply,
              queue=QUEUE_GROUP,
              description="Erase old events (ApplyRetention → RetentionApplied).")  # fmt: skip
