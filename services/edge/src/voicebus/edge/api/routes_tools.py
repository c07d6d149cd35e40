"""Webhook tools of a tenant: the orchestrator owns them (versioned, secrets sealed).

Secrets (``secret_headers``, ``signing_secret``) are accepted and never returned;
a generated signing secret is in the create answer only.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from voicebus.contracts.agents import api
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.api.routes_agents import VersionPath, with_fields
from voicebus.edge.tenancy.keys import Scope

ToolNamePath = Annotated[
    str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", description="Tool name.")
]


class ToolBody(BaseModel):
    """A webhook tool as JSON (``WebhookTool``: settings and secrets)."""

    tool: dict[str, Any] = Field(description="The tool (see the README's Tools).")


def tools_router(edge: Edge) -> APIRouter:
    """``/tools``."""
    router = APIRouter(prefix="/tools", tags=["tools"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.AGENTS_READ)
    writer = edge.auth.tenant(Scope.AGENTS_WRITE)
    owners = edge.owners

    async def ask(subject: str, request: BaseModel, reply: type[Any], **kw: Any) -> Any:
        try:
            return await owners.ask(subject, request, reply, **kw)
        except ApiError as err:
            raise with_fields(err) from None

    @router.get("", response_model=list[api.ToolRecord])
    async def list_tools(who: Annotated[TenantPrincipal, Depends(reader)]) -> list[api.ToolRecord]:
        """The tenant's tools."""
        page = await ask(api.TOOLS_LIST, api.ListTools(tenant_id=who.tenant_id), api.ToolsPage)
        return list(page.tools)

    @router.post("", status_code=201, response_model=api.ToolRecord)
    async def create_tool(
        body: ToolBody, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.ToolRecord:
        """Create a tool (version 1)."""
        request = api.CreateTool(tenant_id=who.tenant_id, tool=body.tool)
        return _record(await ask(api.TOOLS_CREATE, request, api.ToolRecordReply, idempotent=False))

    @router.get("/{name}", response_model=api.ToolRecord)
    async def get_tool(
        name: ToolNamePath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> api.ToolRecord:
        """The current version (secrets named, not shown)."""
        request = api.ToolRef(tenant_id=who.tenant_id, name=name)
        return _record(await ask(api.TOOLS_GET, request, api.ToolRecordReply))

    @router.put("/{name}", response_model=api.ToolRecord)
    async def update_tool(
        name: ToolNamePath, body: ToolBody, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.ToolRecord:
        """Save a new version; secrets left out are kept."""
        request = api.UpdateTool(tenant_id=who.tenant_id, name=name, tool=body.tool)
        return _record(await ask(api.TOOLS_UPDATE, request, api.ToolRecordReply, idempotent=False))

    @router.get("/{name}/versions", response_model=list[api.AgentVersionInfo])
    async def tool_versions(
        name: ToolNamePath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> list[api.AgentVersionInfo]:
        """Every version, newest first."""
        request = api.ToolRef(tenant_id=who.tenant_id, name=name)
        return list((await ask(api.TOOLS_VERSIONS, request, api.ToolVersionsPage)).versions)

    @router.get("/{name}/versions/{version}", response_model=api.ToolRecord)
    async def tool_version(
        name: ToolNamePath, version: VersionPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> api.ToolRecord:
        """One version."""
        request = api.GetToolVersion(tenant_id=who.tenant_id, name=name, version=version)
        return _record(await ask(api.TOOLS_VERSION, request, api.ToolRecordReply))

    @router.delete("/{name}", response_model=api.ToolRecord)
    async def archive_tool(
        name: ToolNamePath, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> api.ToolRecord:
        """Archive: agents naming it run without it."""
        request = api.ToolRef(tenant_id=who.tenant_id, name=name)
        return _record(await ask(api.TOOLS_ARCHIVE, request, api.ToolRecordReply))

    return router


def _record(reply: api.ToolRecordReply) -> api.ToolRecord:
    if reply.record is None:
        raise ApiError(502, "bad_owner_reply", "the orchestrator answered without the tool")
    return reply.record
