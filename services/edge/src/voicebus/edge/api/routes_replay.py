"""Replays and simulations: a recorded call's caller turns, or scripted ones, run through an
agent version by the orchestrator (tenant tools held back), compared turn by turn.

The edge reads the recorded call from audit, asks the orchestrator to run its caller
inputs (``vb.rpc.orchestrator.agents.simulate``) and compares the two conversations
(:func:`voicebus.contracts.replay.diff_turns`).
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebus.contracts.replay import (
    AGENTS_SIMULATE,
    MAX_INPUTS,
    CallerInput,
    RecordedResult,
    ReplayReport,
    SimulateCall,
    SimulationReply,
    TurnRecord,
    agent_version_of,
    caller_inputs,
    diff_turns,
    recorded_results,
    turns_from_events,
)
from voicebus.contracts.rpc import CALL_EVENTS_LIST, CallEventsPage, ListCallEvents, StoredEvent
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.routes_agents import with_fields
from voicebus.edge.api.schemas import TOKEN_PATTERN, AgentIdPath, CallIdPath
from voicebus.edge.tenancy.keys import Scope

_PAGE: Final = 500
_MAX_PAGES: Final = 40
"""A replay reads at most this many pages of a call's events (20,000 events)."""


class ReplayRequest(BaseModel):
    """Body of ``POST /calls/{call_id}/replay``."""

    model_config = ConfigDict(extra="forbid")

    agent_version: int | None = Field(
        default=None, ge=1, description="Version to replay against (default: the current one).",
        examples=[3],
    )  # fmt: skip
    agent_id: str | None = Field(
        default=None, pattern=TOKEN_PATTERN, max_length=128,
        description="Another agent to replay against (default: the call's agent).",
    )  # fmt: skip


class SimulationRequest(BaseModel):
    """Body of ``POST /agents/{agent_id}/simulate``."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, description="Version (default: current).")
    context: dict[str, str] = Field(default_factory=dict, description="Call context variables.")
    inputs: list[CallerInput] = Field(
        default_factory=list, max_length=MAX_INPUTS, description="Caller inputs, in order."
    )
    recorded: list[RecordedResult] = Field(
        default_factory=list, max_length=1000,
        description="Results given back for the tenant's tools (webhook, MCP), never called.",
    )  # fmt: skip


class Simulation(BaseModel):
    """What the agent did with the inputs: turn 0, then one turn per input answered."""

    agent_id: str = Field(description="Agent that ran.")
    version: int = Field(description="Its version.")
    turns: list[TurnRecord] = Field(default_factory=list)


def replay_router(edge: Edge) -> APIRouter:
    """``/calls/{call_id}/replay`` and ``/agents/{agent_id}/simulate``."""
    router = APIRouter(tags=["replay"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.CALLS_READ)
    agents = edge.auth.tenant(Scope.AGENTS_READ)
    owners = edge.owners

    async def run(request: SimulateCall) -> SimulationReply:
        try:
            return await owners.ask(
                AGENTS_SIMULATE, request, SimulationReply,
                idempotent=False, timeout_s=edge.simulation_timeout_s,
            )  # fmt: skip
        except ApiError as err:
            raise with_fields(err) from None

    async def events_of(tenant_id: str, call_id: str) -> list[StoredEvent]:
        events: list[StoredEvent] = []
        after: str | None = None
        for _ in range(_MAX_PAGES):
            request = ListCallEvents(tenant_id=tenant_id, call_id=call_id, limit=_PAGE, after=after)
            page = await owners.ask(CALL_EVENTS_LIST, request, CallEventsPage)
            events += page.events
            after = page.next_after
            if after is None:
                return events
        raise ApiError(422, "call_too_long", f"call {call_id!r} has too many events to replay")

    @router.post("/calls/{call_id}/replay", response_model=ReplayReport)
    async def replay_call(
        call_id: CallIdPath, body: ReplayRequest, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> ReplayReport:
        """Run a finished call's caller turns (transcripts, keypad input) through an agent
        version and compare it with the call, turn by turn: replies, flow nodes, tool calls
        with arguments, the end. Tenant tools are not called: the call's own results are
        given back for the same arguments."""
        events = await events_of(who.tenant_id, call_id)
        started = next((e for e in events if e.type.startswith("call.started.")), None)
        if started is None:
            raise ApiError(404, "call_not_found", f"no started call {call_id!r}")
        original = turns_from_events((e.type, e.data) for e in events)
        request = SimulateCall(
            tenant_id=who.tenant_id,
            agent_id=body.agent_id or str(started.data.get("agent_id", "")),
            version=body.agent_version,
            context=_context(started.data.get("context")),
            inputs=caller_inputs(original)[:MAX_INPUTS],
            recorded=recorded_results(original)[:1000],
            call_id=call_id,
        )
        reply = await run(request)
        return ReplayReport(
            call_id=call_id,
            agent_id=request.agent_id,
            original_version=agent_version_of((e.type, e.data) for e in events),
            replayed_version=reply.version,
            original=original,
            replayed=reply.turns,
            differences=diff_turns(original, reply.turns),
        )

    @router.post("/agents/{agent_id}/simulate", response_model=Simulation)
    async def simulate(
        agent_id: AgentIdPath,
        body: SimulationRequest,
        who: Annotated[TenantPrincipal, Depends(agents)],
    ) -> Simulation:
        """Run caller inputs through an agent version (evals, trying a prompt): what it
        said, the tools it called, the flow nodes it entered, whether it ended the call.
        Tenant tools are not called: ``recorded`` results are given back instead."""
        try:
            request = SimulateCall(
                tenant_id=who.tenant_id, agent_id=agent_id, version=body.version,
                context=body.context, inputs=body.inputs, recorded=body.recorded,
            )  # fmt: skip
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            problem = FieldProblem(field=where, message=first["msg"])
            message = f"{where}: {first['msg']}"
            raise ApiError(422, "invalid_request", message, fields=[problem]) from None
        reply = await run(request)
        if reply.agent_id is None or reply.version is None:
            raise ApiError(502, "bad_reply", "the orchestrator did not name the agent it ran")
        return Simulation(agent_id=reply.agent_id, version=reply.version, turns=reply.turns)

    return router


def _context(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
