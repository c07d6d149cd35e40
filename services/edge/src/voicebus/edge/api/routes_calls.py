"""Calls: place one (a command), list and read them (audit), their recordings (recorder)."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, ValidationError
from starlette.responses import StreamingResponse

from voicebus.contracts.agents.api import (
    AGENTS_CHECK_CONTEXT,
    CheckCallContext,
    ContextCheckReply,
)
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import (
    CALL_EVENTS_LIST,
    CALLS_GET,
    CALLS_LIST,
    MAX_CHUNK_BYTES,
    RECORDINGS_GET,
    RECORDINGS_READ,
    CallEventsPage,
    CallReply,
    CallsPage,
    CallSummary,
    GetCall,
    ListCallEvents,
    ListCalls,
    ReadRecording,
    RecordingChunk,
    RecordingMeta,
    RecordingReply,
)
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.idempotency import IdempotencyKey, idempotent
from voicebus.edge.api.ratelimit import KeyRateLimiter
from voicebus.edge.api.routes_agents import with_fields
from voicebus.edge.api.schemas import (
    E164,
    TOKEN_PATTERN,
    CallAccepted,
    CallCreate,
    CallIdPath,
    CallList,
    EventList,
)
from voicebus.edge.tenancy.destinations import destination_refusal
from voicebus.edge.tenancy.keys import Scope

log = logging.getLogger(__name__)

_WAV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/wav": {}}, "description": "The recording (stereo WAV)."}
}


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        f"{field}: {message}",
        fields=[FieldProblem(field=field, message=message)],
    )


def calls_router(edge: Edge) -> APIRouter:
    """``/calls``."""
    router = APIRouter(prefix="/calls", tags=["calls"], responses=ERROR_RESPONSES)
    writer = edge.auth.tenant(Scope.CALLS_WRITE)
    reader = edge.auth.tenant(Scope.CALLS_READ)
    listener = edge.auth.tenant(Scope.RECORDINGS_READ)
    owners = edge.owners

    @router.post("", status_code=202, response_model=CallAccepted)
    async def place_call(
        body: CallCreate,
        who: Annotated[TenantPrincipal, Depends(writer)],
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Place an outbound call: queued at once; its progress arrives as events."""
        return await idempotent(
            edge.store, who.tenant_id, "calls.create", idempotency_key, body, 202,
            lambda: _place(body, who),
        )  # fmt: skip

    async def _place(body: CallCreate, who: TenantPrincipal) -> CallAccepted:
        if body.provider is not None and body.provider not in edge.providers:
            raise _invalid("provider", f"unknown provider {body.provider!r}")
        await _within_limits(body, who.tenant_id)
        check = CheckCallContext(tenant_id=who.tenant_id, agent_id=body.agent_id,
                                 context=body.context)  # fmt: skip
        try:
            await owners.ask(AGENTS_CHECK_CONTEXT, check, ContextCheckReply)
        except ApiError as err:
            if err.status == 404:
                raise _invalid("agent_id", f"unknown agent {body.agent_id!r}") from None
            if err.status == 422:  # the agent's variables: context.<name>: problem
                raise with_fields(err) from None
            raise
        try:
            data = OriginateCallData(**body.model_dump())
        except ValidationError as err:
            first = err.errors()[0]
            raise _invalid(".".join(str(p) for p in first["loc"]) or "body", first["msg"]) from None
        command = OriginateCall(
            tenant_id=who.tenant_id, call_id=new_id(), source=edge.source, data=data
        )
        try:
            await owners.bus.originate(command)
        except Exception as err:  # a bus failure of any kind: the call was not queued
            log.warning("originate not queued", extra={"error": type(err).__name__})
            raise ApiError(
                503,
                "bus_unavailable",
                "the call could not be queued; retry later",
                headers={"Retry-After": "1"},
            ) from None
        log.info("call queued", extra={"call_id": command.call_id, "key_id": who.key_id})
        return CallAccepted(call_id=command.call_id)

    async def _within_limits(body: CallCreate, tenant_id: str) -> None:
        """The tenant's guards: destination countries, calls per minute, live calls."""
        if not edge.store.bound:  # no database: no tenant keys either, nothing to look up
            return
        limits = await edge.store.limits(tenant_id)
        refusal = destination_refusal(body.to_number, limits.allowed_countries)
        if refusal is not None:
            raise ApiError(
                403, "destination_not_allowed", f"to_number: {refusal}",
                fields=[FieldProblem(field="to_number", message=refusal)],
            )  # fmt: skip
        if limits.calls_per_minute is not None:
            wait = await edge.call_limiter.hit(f"calls:{tenant_id}", limits.calls_per_minute)
            if wait is not None:
                message = f"the tenant's limit of {limits.calls_per_minute} calls per minute"
                raise ApiError(
                    429, "call_rate_limited", f"calls_per_minute: {message} is reached",
                    fields=[FieldProblem(field="calls_per_minute", message=message)],
                    headers={"Retry-After": KeyRateLimiter.retry_after(wait)},
                )  # fmt: skip
        cap = limits.max_concurrent_calls
        if cap is not None and await edge.call_slots.all_taken(tenant_id, cap):
            message = f"the tenant's limit of {cap} concurrent calls"
            raise ApiError(
                429, "concurrent_call_limit", f"max_concurrent_calls: {message} is reached",
                fields=[FieldProblem(field="max_concurrent_calls", message=message)],
                headers={"Retry-After": "5"},
            )  # fmt: skip

    @router.get("", response_model=CallList)
    async def list_calls(
        who: Annotated[TenantPrincipal, Depends(reader)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        before: Annotated[str | None, Query(pattern=TOKEN_PATTERN)] = None,
        status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
        agent_id: Annotated[
            str | None, Query(pattern=TOKEN_PATTERN, description="Only this agent's calls.")
        ] = None,
        direction: Annotated[Literal["inbound", "outbound"] | None, Query()] = None,
        provider: Annotated[
            str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Only this provider.")
        ] = None,
        ended_reason: Annotated[
            str | None, Query(pattern=r"^[a-z_]{1,32}$", description="Only calls ended so.")
        ] = None,
        phone: Annotated[
            str | None, Query(pattern=E164, description="Only calls from or to this number.")
        ] = None,
        since: Annotated[
            AwareDatetime | None, Query(description="Initiated at or after (ISO 8601, zoned).")
        ] = None,
        until: Annotated[
            AwareDatetime | None, Query(description="Initiated before (ISO 8601, zoned).")
        ] = None,
    ) -> CallList:
        """The tenant's calls, newest first, narrowed by any of the filters."""
        request = ListCalls(
            tenant_id=who.tenant_id, limit=limit, before=before, status=status,
            agent_id=agent_id, direction=direction, provider=provider,
            ended_reason=ended_reason, phone=phone, since=since, until=until,
        )  # fmt: skip
        page = await owners.ask(CALLS_LIST, request, CallsPage)
        return CallList(calls=page.calls, next_before=page.next_before)

    @router.get("/{call_id}", response_model=CallSummary)
    async def get_call(
        call_id: CallIdPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> CallSummary:
        """One call of the tenant; another tenant's call is a 404."""
        reply = await owners.ask(
            CALLS_GET, GetCall(tenant_id=who.tenant_id, call_id=call_id), CallReply
        )
        if reply.call is None:
            raise ApiError(404, "call_not_found", f"no call {call_id!r}")
        return reply.call

    @router.get("/{call_id}/events", response_model=EventList)
    async def call_events(
        call_id: CallIdPath,
        who: Annotated[TenantPrincipal, Depends(reader)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        after: Annotated[str | None, Query(max_length=64, pattern=TOKEN_PATTERN)] = None,
    ) -> EventList:
        """The call's events in order (as stored by audit)."""
        request = ListCallEvents(tenant_id=who.tenant_id, call_id=call_id, limit=limit, after=after)
        page = await owners.ask(CALL_EVENTS_LIST, request, CallEventsPage)
        return EventList(events=page.events, next_after=page.next_after)

    @router.get("/{call_id}/recording", response_model=RecordingMeta)
    async def recording(
        call_id: CallIdPath, who: Annotated[TenantPrincipal, Depends(listener)]
    ) -> RecordingMeta:
        """The call's recording: size, duration, format."""
        return await _recording(who.tenant_id, call_id)

    @router.get("/{call_id}/recording.wav", response_class=StreamingResponse, responses=_WAV)
    async def recording_wav(
        call_id: CallIdPath, who: Annotated[TenantPrincipal, Depends(listener)]
    ) -> StreamingResponse:
        """Download the recording (streamed from the recorder in chunks)."""
        meta = await _recording(who.tenant_id, call_id)
        first = await _chunk(who.tenant_id, call_id, 0)

        async def body() -> AsyncIterator[bytes]:
            chunk, offset = first, 0
            while chunk.data:
                yield chunk.data
                offset += len(chunk.data)
                if offset >= chunk.total_bytes:
                    return
                chunk = await _chunk(who.tenant_id, call_id, offset)

        headers = {
            "Content-Length": str(first.total_bytes),
            "Content-Disposition": f'attachment; filename="{call_id}.wav"',
        }
        return StreamingResponse(body(), media_type=meta.media_type, headers=headers)

    async def _recording(tenant_id: str, call_id: str) -> RecordingMeta:
        request = GetCall(tenant_id=tenant_id, call_id=call_id)
        reply = await owners.ask(RECORDINGS_GET, request, RecordingReply)
        if reply.recording is None:
            raise ApiError(404, "recording_not_found", f"no recording of call {call_id!r}")
        return reply.recording

    async def _chunk(tenant_id: str, call_id: str, offset: int) -> RecordingChunk:
        request = ReadRecording(
            tenant_id=tenant_id, call_id=call_id, offset=offset, length=MAX_CHUNK_BYTES
        )
        return await owners.ask(RECORDINGS_READ, request, RecordingChunk)

    return router
