"""Agents: the orchestrator owns them (per tenant, versioned); the edge forwards.

A save is checked in full by the orchestrator; its 422 names every field at
fault (``flow.nodes[2].transitions[0].target``), listed in ``fields`` too.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from voicebus.contracts.agents import api
from voicebus.contracts.rpc import AGENTS_LIST, AgentProfile, AgentsPage, ListAgents
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.schemas import AgentIdPath
from voicebus.edge.tenancy.keys import Scope

VersionPath = Annotated[int, Path(ge=1, le=1_000_000, description="Version number.")]


class AgentCreate(BaseModel):
    """Body of ``POST /agents``."""

    agent_id: str = Field(pattern=api.AGENT_ID_PATTERN, description="The new agent's id.",
                          examples=["support"])  # fmt: skip
    definition: dict[str, Any] = Field(description="An agent definition (see the README).")


class AgentUpdate(BaseModel):
    """Body of ``PUT /agents/{agent_id}``: the whole new definition."""

    definition: dict[str, Any] = Field(description="An agent definition (see the README).")
    expected_version: int | None = Field(
        default=None, ge=1, description="Refuse (409) unless this is still the current version."
    )


def with_fields(error: ApiError) -> ApiError:
    """An owner's 422 (``path: problem; path: problem``) with its ``fields`` listed."""
    if error.status != 422 or error.fields:
        return error
    fields = []
    for part in error.message.split("; "):
        path, sep, problem = part.partition(": ")
        if sep:
            fields.append(FieldProblem(field=path, message=problem))
    return ApiError(422, error.code, error.message, fields=fields)


def agents_router(edge: Edge) -> APIRouter:
    """``/agents``."""
    router = APIRouter(prefix="/agents", tags=["agents"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.AGENTS_READ)
    writer = edge.auth.tenant(Scope.AGENTS_WRITE)
    owners = edge.owners

    async def ask(subject: str, request: BaseModel, reply: type[Any], **kw: Any) -> Any:
        try:
            return await owners.ask(subject, request, reply, **kw)
        except ApiError as err:
            raise with_fields(err) from None

    @router.get("", response_model=list[AgentProfile])
    async def list_agents(who: Annotated[TenantPrincipal, Depends(reader)]) -> list[AgentProfile]:
        """The agents the tenant's calls can use (its own and the shared templates)."""
        page = await ask(AGENTS_LIST, ListAgents(tenant_id=who.tenant_id), AgentsPage)
        return list(page.agents)

    @router.post("", status_code=201, response_model=api.AgentRecord)
    async def create_agent(
        body: AgentCreate, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.AgentRecord:
        """Create an agent (version 1); 409 if the tenant has one with this id."""
        request = api.CreateAgent(tenant_id=who.tenant_id, agent_id=body.agent_id,
                                  definition=body.definition)  # fmt: skip
        reply = await ask(api.AGENTS_CREATE, request, api.AgentRecordReply, idempotent=False)
        return _record(reply)

    @router.get("/{agent_id}", response_model=api.AgentRecord)
    async def get_agent(
        agent_id: AgentIdPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> api.AgentRecord:
        """The agent's current version, definition included."""
        request = api.GetAgentVersion(tenant_id=who.tenant_id, agent_id=agent_id)
        return _record(await ask(api.AGENTS_VERSION, request, api.AgentRecordReply))

    @router.put("/{agent_id}", response_model=api.AgentRecord)
    async def update_agent(
        agent_id: AgentIdPath, body: AgentUpdate, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.AgentRecord:
        """Save a new version: new calls use it at once; live calls keep theirs."""
        request = api.UpdateAgent(tenant_id=who.tenant_id, agent_id=agent_id,
                                  definition=body.definition,
                                  expected_version=body.expected_version)  # fmt: skip
        reply = await ask(api.AGENTS_UPDATE, request, api.AgentRecordReply, idempotent=False)
        return _record(reply)

    @router.get("/{agent_id}/versions", response_model=list[api.AgentVersionInfo])
    async def list_versions(
        agent_id: AgentIdPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> list[api.AgentVersionInfo]:
        """Every version, newest first."""
        request = api.AgentRef(tenant_id=who.tenant_id, agent_id=agent_id)
        page = await ask(api.AGENTS_VERSIONS, request, api.AgentVersionsPage)
        return list(page.versions)

    @router.get("/{agent_id}/versions/{version}", response_model=api.AgentRecord)
    async def get_version(
        agent_id: AgentIdPath, version: VersionPath,
        who: Annotated[TenantPrincipal, Depends(reader)],
    ) -> api.AgentRecord:  # fmt: skip
        """One version."""
        request = api.GetAgentVersion(tenant_id=who.tenant_id, agent_id=agent_id,
                                      version=version)  # fmt: skip
        return _record(await ask(api.AGENTS_VERSION, request, api.AgentRecordReply))

    @router.post("/{agent_id}/versions/{version}/live", response_model=api.AgentRecord)
    async def make_live(
        agent_id: AgentIdPath, version: VersionPath,
        who: Annotated[TenantPrincipal, Depends(writer)],
    ) -> api.AgentRecord:  # fmt: skip
        """Make a version the one new calls use.

        The live version is always the newest: an older version goes live as a new version
        with its definition. Making the live version live changes nothing.
        """
        tenant = who.tenant_id
        wanted = api.GetAgentVersion(tenant_id=tenant, agent_id=agent_id, version=version)
        chosen = _record(await ask(api.AGENTS_VERSION, wanted, api.AgentRecordReply))
        if chosen.version == chosen.current_version:
            return chosen
        request = api.UpdateAgent(tenant_id=tenant, agent_id=agent_id,
                                  definition=chosen.definition.model_dump(mode="json"),
                                  expected_version=chosen.current_version)  # fmt: skip
        reply = await ask(api.AGENTS_UPDATE, request, api.AgentRecordReply, idempotent=False)
        return _record(reply)

    @router.delete("/{agent_id}", response_model=api.AgentRecord)
    async def archive_agent(
        agent_id: AgentIdPath, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.AgentRecord:
        """Archive the tenant's agent: new calls are refused; its versions stay."""
        request = api.AgentRef(tenant_id=who.tenant_id, agent_id=agent_id)
        return _record(await ask(api.AGENTS_ARCHIVE, request, api.AgentRecordReply))

    return router


def _record(reply: api.AgentRecordReply) -> api.AgentRecord:
    if reply.record is None:
        raise ApiError(502, "bad_owner_reply", "the orchestrator answered without the agent")
    return reply.record
