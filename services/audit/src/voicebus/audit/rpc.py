"""Audit's request/reply subscribers for the REST edge: parse, query, answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.nats import NatsBroker, NatsMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.audit import queries
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
    RpcError,
)
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

QUEUE_GROUP = "audit-rpc"
RequestT = TypeVar("RequestT", bound=BaseModel)
ReplyT = TypeVar("ReplyT", bound=BaseModel)


def _bad_request(exc: ValidationError) -> RpcError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return RpcError(status=400, code="bad_request", message=problems[:1024])


_UNAVAILABLE = RpcError(
    status=503, code="database_unavailable", message="audit database unavailable"
)


async def _answer(
    raw: bytes,
    request_type: type[RequestT],
    run: Callable[[RequestT], Awaitable[ReplyT]],
    fail: Callable[[RpcError], ReplyT],
) -> ReplyT:
    try:
        request = request_type.model_validate_json(raw)
    except ValidationError as exc:
        return fail(_bad_request(exc))
    try:
        return await run(request)
    except (DBAPIError, OSError):
        log.warning("audit query failed", exc_info=True)
        return fail(_UNAVAILABLE)


def register_rpc(broker: NatsBroker, service: Service) -> None:
    """Declare the edge's queries on ``broker``; they read ``service.db`` once connected."""

    def db() -> AsyncEngine:
        if service.db is None:
            raise ConnectionError("audit has no database yet")
        return service.db

    def _not_found(call_id: str) -> RpcError:
        return RpcError(status=404, code="call_not_found", message=f"no call {call_id!r}")

    async def calls_list(request: ListCalls) -> CallsPage:
        calls, cursor = await queries.list_calls(db(), request)
        return CallsPage(ok=True, calls=calls, next_before=cursor)

    async def calls_get(request: GetCall) -> CallReply:
        call = await queries.get_call(db(), request.tenant_id, request.call_id)
        if call is None:
            return CallReply(ok=False, error=_not_found(request.call_id))
        return CallReply(ok=True, call=call)

    async def events_list(request: ListCallEvents) -> CallEventsPage:
        if await queries.get_call(db(), request.tenant_id, request.call_id) is None:
            return CallEventsPage(ok=False, error=_not_found(request.call_id))
        events, cursor = await queries.list_events(db(), request)
        return CallEventsPage(ok=True, events=events, next_after=cursor)

    @broker.subscriber(
        CALLS_LIST, queue=QUEUE_GROUP, description="List a tenant's calls (ListCalls → CallsPage)."
    )
    async def on_calls_list(msg: NatsMessage) -> CallsPage:
        return await _answer(
            msg.body, ListCalls, calls_list, lambda e: CallsPage(ok=False, error=e)
        )

    @broker.subscriber(
        CALLS_GET, queue=QUEUE_GROUP, description="One call of a tenant (GetCall → CallReply)."
    )
    async def on_calls_get(msg: NatsMessage) -> CallReply:
        return await _answer(msg.body, GetCall, calls_get, lambda e: CallReply(ok=False, error=e))

    @broker.subscriber(
        CALL_EVENTS_LIST,
        queue=QUEUE_GROUP,
        description="A call's events (ListCallEvents → CallEventsPage).",
    )
    async def on_events_list(msg: NatsMessage) -> CallEventsPage:
        return await _answer(
            msg.body, ListCallEvents, events_list, lambda e: CallEventsPage(ok=False, error=e)
        )
