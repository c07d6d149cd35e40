"""The orchestrator's answers on ``vb.rpc.orchestrator.agents.*`` and ``.tools.*``.

Each responder parses, asks the library, answers; a bad definition is a 422
naming every field, another tenant's agent or tool a 404, a stale or archived
save a 409. ``agents.get`` and ``agents.list`` answer with profiles (media and
the gateway read them at every call), read from the store, so a new version is
what the very next call sees.
"""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker

from voicebus.contracts.agents import api, check_context
from voicebus.contracts.keys import TOOL_SECRETS_ROTATE, KeysRotated, RotateKeys
from voicebus.contracts.replay import AGENTS_SIMULATE, SimulateCall, SimulationReply
from voicebus.contracts.rpc import (
    AGENTS_GET,
    AGENTS_LIST,
    MEMORY_DELETE,
    MEMORY_GET,
    AgentReply,
    AgentsPage,
    CallerMemoryReply,
    CallerProfile,
    CallerRef,
    GetAgent,
    ListAgents,
)
from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.memory import Profile, caller_key
from voicebus.runtime.rpc import Invalid, NotFound, Unavailable, responder

log = logging.getLogger(__name__)

QUEUE_GROUP = "orchestrator-rpc"


class Responders:
    """The handlers behind every orchestrator subject.

    Args:
        orchestrator: the running domain (its agent and tool libraries, catalog).
    """

    def __init__(self, orchestrator: Orchestrator) -> None:
        self._o = orchestrator

    async def get_profile(self, request: GetAgent) -> AgentReply:
        """The profile of the version a new call would run (404: unknown or archived)."""
        try:
            found = await self._o.catalog.current(request.tenant_id, request.agent_id)
        except AgentConfigError as exc:
            raise Unavailable(f"the agent cannot run: {exc}", code="agent_unusable") from None
        if found is None:
            message = f"no agent {request.agent_id!r} for tenant {request.tenant_id!r}"
            raise NotFound(message, code="agent_not_found")
        return AgentReply(ok=True, agent=found[0].profile)

    async def list_profiles(self, request: ListAgents) -> AgentsPage:
        """Profiles of the agents the tenant may use, by id."""
        records = await self._o.agents.listing(request.tenant_id, request.include_archived)
        profiles = []
        for record in records:
            found = await self._o.catalog.version(
                "" if record.template else request.tenant_id, record.agent_id, record.version
            )
            if found is not None:
                profiles.append(found[0].profile)
        return AgentsPage(ok=True, agents=profiles)

    async def create(self, request: api.CreateAgent) -> api.AgentRecordReply:
        """Version 1."""
        record = await self._o.agents.create(
            request.tenant_id, request.agent_id, request.definition, template=request.template
        )
        return api.AgentRecordReply(ok=True, record=record)

    async def update(self, request: api.UpdateAgent) -> api.AgentRecordReply:
        """A new version."""
        record = await self._o.agents.update(
            request.tenant_id,
            request.agent_id,
            request.definition,
            expected=request.expected_version,
            template=request.template,
        )
        return api.AgentRecordReply(ok=True, record=record)

    async def import_(self, request: api.ImportAgent) -> api.AgentRecordReply:
        """Create, or a new version only if changed."""
        record = await self._o.agents.import_(
            request.tenant_id, request.agent_id, request.definition, template=request.template
        )
        return api.AgentRecordReply(ok=True, record=record)

    async def version(self, request: api.GetAgentVersion) -> api.AgentRecordReply:
        """One version (current by default)."""
        record = await self._o.agents.get(request.tenant_id, request.agent_id, request.version)
        return api.AgentRecordReply(ok=True, record=record)

    async def versions(self, request: api.AgentRef) -> api.AgentVersionsPage:
        """Every version, newest first."""
        found = await self._o.agents.history(request.tenant_id, request.agent_id)
        return api.AgentVersionsPage(ok=True, versions=found)

    async def archive(self, request: api.AgentRef) -> api.AgentRecordReply:
        """Archive the tenant's own agent."""
        record = await self._o.agents.archive(request.tenant_id, request.agent_id)
        return api.AgentRecordReply(ok=True, record=record)

    async def check_context(self, request: api.CheckCallContext) -> api.ContextCheckReply:
        """Would a call with this context be accepted? (422 naming each field if not)."""
        record = await self._o.agents.get(request.tenant_id, request.agent_id)
        if record.archived:
            raise NotFound(f"agent {request.agent_id!r} is archived", code="agent_not_found")
        problems = check_context(record.definition, request.context)
        if problems:
            raise Invalid("; ".join(str(p) for p in problems), code="invalid_context")
        return api.ContextCheckReply(ok=True, agent_id=record.agent_id, version=record.version)

    async def simulate(self, request: SimulateCall) -> SimulationReply:
        """Run caller inputs through an agent version, nothing sent (404: unknown)."""
        try:
            return await self._o.simulator.run(request)
        except AgentConfigError as exc:
            raise Unavailable(f"the agent cannot run: {exc}", code="agent_unusable") from None

    async def tool_create(self, request: api.CreateTool) -> api.ToolRecordReply:
        """Version 1 of a webhook tool."""
        return api.ToolRecordReply(
            ok=True, record=await self._o.tools.create(request.tenant_id, request.tool)
        )

    async def tool_update(self, request: api.UpdateTool) -> api.ToolRecordReply:
        """A new version (secrets not given are kept)."""
        record = await self._o.tools.update(request.tenant_id, request.name, request.tool)
        return api.ToolRecordReply(ok=True, record=record)

    async def tool_get(self, request: api.ToolRef) -> api.ToolRecordReply:
        """The current version."""
        return api.ToolRecordReply(
            ok=True, record=await self._o.tools.get(request.tenant_id, request.name)
        )

    async def tool_version(self, request: api.GetToolVersion) -> api.ToolRecordReply:
        """One version."""
        record = await self._o.tools.get(request.tenant_id, request.name, request.version)
        return api.ToolRecordReply(ok=True, record=record)

    async def tool_list(self, request: api.ListTools) -> api.ToolsPage:
        """The tenant's tools."""
        found = await self._o.tools.listing(request.tenant_id, request.include_archived)
        return api.ToolsPage(ok=True, tools=found)

    async def tool_versions(self, request: api.ToolRef) -> api.ToolVersionsPage:
        """Every version, newest first."""
        found = await self._o.tools.history(request.tenant_id, request.name)
        return api.ToolVersionsPage(ok=True, versions=found)

    async def tool_archive(self, request: api.ToolRef) -> api.ToolRecordReply:
        """Archive."""
        record = await self._o.tools.archive(request.tenant_id, request.name)
        return api.ToolRecordReply(ok=True, record=record)

    async def secrets_rotate(self, request: RotateKeys) -> KeysRotated:
        """Seal every stored tool secret again with the newest key."""
        rotated, unreadable = await self._o.tools.rotate_secrets(dry_run=request.dry_run)
        log.warning(
            "tool secrets re-sealed",
            extra={"rotated": rotated, "unreadable": unreadable, "dry_run": request.dry_run},
        )
        return KeysRotated(
            ok=True, rotated=rotated, unreadable=unreadable, keys=self._o.tools.key_count
        )

    async def memory_get(self, request: CallerRef) -> CallerMemoryReply:
        """A caller's memory (404: none for this tenant)."""
        number = caller_key(request.number)
        found = await self._o.memory.get(request.tenant_id, number)
        return CallerMemoryReply(ok=True, profile=_profile(number, found))

    async def memory_delete(self, request: CallerRef) -> CallerMemoryReply:
        """Forget a caller; answers with what was deleted (404: nothing was kept)."""
        number = caller_key(request.number)
        found = await self._o.memory.forget(request.tenant_id, number)
        return CallerMemoryReply(ok=True, profile=_profile(number, found))


def _profile(number: str, profile: Profile | None) -> CallerProfile:
    if profile is None:
        raise NotFound("no memory of this caller", code="caller_not_found")
    return CallerProfile.model_validate({"number": number, **profile.model_dump()})


def register(broker: NatsBroker, orchestrator: Orchestrator) -> None:
    """Declare the orchestrator's responders on ``broker`` (one instance answers each)."""
    r = Responders(orchestrator)
    q = QUEUE_GROUP
    responder(
        broker,
        AGENTS_GET,
        GetAgent,
        AgentReply,
        r.get_profile,
        queue=q,
        description="An agent's profile, current version (GetAgent → AgentReply).",
    )
    responder(
        broker,
        AGENTS_LIST,
        ListAgents,
        AgentsPage,
        r.list_profiles,
        queue=q,
        description="A tenant's agents (ListAgents → AgentsPage).",
    )
    responder(broker, api.AGENTS_CREATE, api.CreateAgent, api.AgentRecordReply, r.create, queue=q)
    responder(broker, api.AGENTS_UPDATE, api.UpdateAgent, api.AgentRecordReply, r.update, queue=q)
    responder(broker, api.AGENTS_IMPORT, api.ImportAgent, api.AgentRecordReply, r.import_, queue=q)
    responder(
        broker, api.AGENTS_VERSION, api.GetAgentVersion, api.AgentRecordReply, r.version, queue=q
    )
    responder(broker, api.AGENTS_VERSIONS, api.AgentRef, api.AgentVersionsPage, r.versions, queue=q)
    responder(broker, api.AGENTS_ARCHIVE, api.AgentRef, api.AgentRecordReply, r.archive, queue=q)
    responder(
        broker,
        api.AGENTS_CHECK_CONTEXT,
        api.CheckCallContext,
        api.ContextCheckReply,
        r.check_context,
        queue=q,
    )
    responder(
        broker, AGENTS_SIMULATE, SimulateCall, SimulationReply, r.simulate, queue=q,
        description="Run caller inputs through an agent version with tenant tools held back "
        "(SimulateCall → SimulationReply).",
    )  # fmt: skip
    responder(broker, api.TOOLS_CREATE, api.CreateTool, api.ToolRecordReply, r.tool_create, queue=q)
    responder(broker, api.TOOLS_UPDATE, api.UpdateTool, api.ToolRecordReply, r.tool_update, queue=q)
    responder(broker, api.TOOLS_GET, api.ToolRef, api.ToolRecordReply, r.tool_get, queue=q)
    responder(
        broker, api.TOOLS_VERSION, api.GetToolVersion, api.ToolRecordReply, r.tool_version, queue=q
    )
    responder(broker, api.TOOLS_LIST, api.ListTools, api.ToolsPage, r.tool_list, queue=q)
    responder(
        broker, api.TOOLS_VERSIONS, api.ToolRef, api.ToolVersionsPage, r.tool_versions, queue=q
    )
    responder(broker, api.TOOLS_ARCHIVE, api.ToolRef, api.ToolRecordReply, r.tool_archive, queue=q)
    responder(broker, MEMORY_GET, CallerRef, CallerMemoryReply, r.memory_get, queue=q)
    responder(broker, MEMORY_DELETE, CallerRef, CallerMemoryReply, r.memory_delete, queue=q)
    responder(
        broker, TOOL_SECRETS_ROTATE, RotateKeys, KeysRotated, r.secrets_rotate, queue=q,
        description="Seal every stored webhook-tool secret again with the newest key "
        "(RotateKeys → KeysRotated).",
    )  # fmt: skip
