"""Agents and tools over request/reply: ``vb.rpc.orchestrator.agents.*`` and ``.tools.*``.

The orchestrator owns both, per tenant and versioned: every save is a new
immutable version, a delete archives, and another tenant's agent or tool is
not found. Definitions travel as JSON objects and are checked by the owner, so
a 422 names the field as people write it (``flow.nodes[2].transitions[0].target``).
``agents.get`` and ``agents.list`` (:mod:`voicebus.contracts.rpc`) answer with
profiles for media and the gateway, and now with the record too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import Field

from voicebus.contracts import subjects
from voicebus.contracts.agents.definition import AgentDefinition
from voicebus.contracts.agents.tools import WebhookSettings
from voicebus.contracts.events._base import Data, TenantId
from voicebus.contracts.rpc import Reply

AGENT_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,128}$"
SHARED_TENANT: Final = "_shared"
"""The tenant slot of templates' ``agent.updated`` events (no tenant owns a template)."""


def _rpc(resource: str, verb: str) -> str:
    return subjects.rpc("orchestrator", resource, verb)


AGENTS_CREATE: Final = _rpc("agents", "create")
"""Request :class:`CreateAgent`, reply :class:`AgentRecordReply` (version 1; 409 if it exists)."""
AGENTS_UPDATE: Final = _rpc("agents", "update")
"""Request :class:`UpdateAgent`, reply :class:`AgentRecordReply` (a new version)."""
AGENTS_VERSIONS: Final = _rpc("agents", "versions")
"""Request :class:`AgentRef`, reply :class:`AgentVersionsPage`."""
AGENTS_VERSION: Final = _rpc("agents", "version")
"""Request :class:`GetAgentVersion`, reply :class:`AgentRecordReply` (no version: current)."""
AGENTS_ARCHIVE: Final = _rpc("agents", "archive")
"""Request :class:`AgentRef`, reply :class:`AgentRecordReply` (new calls refuse it)."""
AGENTS_CHECK_CONTEXT: Final = _rpc("agents", "check_context")
"""Request :class:`CheckCallContext`, reply :class:`ContextCheckReply` (422 naming fields)."""
AGENTS_IMPORT: Final = _rpc("agents", "import")
"""Request :class:`ImportAgent`, reply :class:`AgentRecordReply`: create, or a new version
only when the definition changed (idempotent; the ``voicebus agent import`` command)."""
TOOLS_CREATE: Final = _rpc("tools", "create")
"""Request :class:`CreateTool`, reply :class:`ToolRecordReply`."""
TOOLS_UPDATE: Final = _rpc("tools", "update")
"""Request :class:`UpdateTool`, reply :class:`ToolRecordReply` (a new version)."""
TOOLS_GET: Final = _rpc("tools", "get")
"""Request :class:`ToolRef`, reply :class:`ToolRecordReply`."""
TOOLS_LIST: Final = _rpc("tools", "list")
"""Request :class:`ListTools`, reply :class:`ToolsPage`."""
TOOLS_VERSIONS: Final = _rpc("tools", "versions")
"""Request :class:`ToolRef`, reply :class:`ToolVersionsPage`."""
TOOLS_VERSION: Final = _rpc("tools", "version")
"""Request :class:`GetToolVersion`, reply :class:`ToolRecordReply`."""
TOOLS_ARCHIVE: Final = _rpc("tools", "archive")
"""Request :class:`ToolRef`, reply :class:`ToolRecordReply`."""

_AGENT_ID = Field(pattern=AGENT_ID_PATTERN, description="Agent id.", examples=["demo"])
_TOOL_NAME = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", description="Tool name.",
                   examples=["lookup_account"])  # fmt: skip


class AgentRef(Data):
    """One agent of a tenant (its own, or a shared template when it has none of that id)."""

    tenant_id: TenantId
    agent_id: str = _AGENT_ID


class CreateAgent(Data):
    """Request body of ``agents.create``."""

    tenant_id: TenantId
    agent_id: str = _AGENT_ID
    definition: dict[str, Any] = Field(description="An AgentDefinition as JSON.")
    template: bool = Field(
        default=False,
        description="Operator only: a shared template every tenant may use (tenant_id ignored).",
    )


class UpdateAgent(Data):
    """Request body of ``agents.update``: the whole new definition."""

    tenant_id: TenantId
    agent_id: str = _AGENT_ID
    definition: dict[str, Any] = Field(description="An AgentDefinition as JSON.")
    expected_version: int | None = Field(
        default=None, ge=1, description="Refuse (409) unless this is still the current version."
    )
    template: bool = Field(default=False, description="Operator only: update the template.")


class ImportAgent(Data):
    """Request body of ``agents.import``: a definition from a file, for its listed tenants."""

    tenant_id: TenantId = Field(description="Used when the definition names no tenants.")
    agent_id: str = _AGENT_ID
    definition: dict[str, Any] = Field(description="An AgentDefinition as JSON.")
    template: bool = Field(default=False, description="Import as a shared template.")


class GetAgentVersion(Data):
    """Request body of ``agents.version``."""

    tenant_id: TenantId
    agent_id: str = _AGENT_ID
    version: int | None = Field(
        default=None, ge=1, description="Version number; the current one when null.",
        examples=[3],
    )  # fmt: skip


class AgentRecord(Data):
    """One version of an agent, as stored."""

    agent_id: str = _AGENT_ID
    tenant_id: str | None = Field(description="Owner; null for a shared template.")
    version: int = Field(ge=1, description="This version.", examples=[3])
    current_version: int = Field(ge=1, description="The version new calls use.", examples=[3])
    template: bool = Field(description="A shared template.")
    archived: bool = Field(description="Archived: new calls are refused.")
    created_at: datetime = Field(description="When this version was saved.")
    definition: AgentDefinition = Field(description="The definition of this version.")


class AgentRecordReply(Reply):
    """Reply carrying one agent version."""

    record: AgentRecord | None = Field(default=None, description="The agent, when ok.")


class AgentVersionInfo(Data):
    """One version in an agent's history."""

    version: int = Field(ge=1, examples=[2])
    created_at: datetime
    digest: str = Field(description="SHA-256 of the definition's canonical JSON.")


class AgentVersionsPage(Reply):
    """Reply of ``agents.versions``: newest first."""

    versions: list[AgentVersionInfo] = Field(default_factory=list)


class CheckCallContext(Data):
    """Request body of ``agents.check_context``: would a call with this context be accepted?"""

    tenant_id: TenantId
    agent_id: str = _AGENT_ID
    context: dict[str, str] = Field(default_factory=dict, description="The call's context.")


class ContextCheckReply(Reply):
    """Reply of ``agents.check_context`` (a refusal is a 422 naming each field)."""

    agent_id: str | None = Field(default=None, description="The agent checked.")
    version: int | None = Field(default=None, description="Its current version.")


class ToolRef(Data):
    """One tool of a tenant."""

    tenant_id: TenantId
    name: str = _TOOL_NAME


class CreateTool(Data):
    """Request body of ``tools.create``: a WebhookTool as JSON (with its secrets)."""

    tenant_id: TenantId
    tool: dict[str, Any] = Field(description="A WebhookTool as JSON.")


class UpdateTool(Data):
    """Request body of ``tools.update``: the whole new tool.

    Secrets left out are kept from the current version (they are never read back).
    """

    tenant_id: TenantId
    name: str = _TOOL_NAME
    tool: dict[str, Any] = Field(description="A WebhookTool as JSON.")


class GetToolVersion(Data):
    """Request body of ``tools.version``."""

    tenant_id: TenantId
    name: str = _TOOL_NAME
    version: int = Field(ge=1)


class ListTools(Data):
    """Request body of ``tools.list``."""

    tenant_id: TenantId
    include_archived: bool = Field(default=False, description="Archived tools too.")


class ToolRecord(Data):
    """One version of a tenant's tool; secrets are named, never shown."""

    name: str = _TOOL_NAME
    tenant_id: str
    version: int = Field(ge=1)
    current_version: int = Field(ge=1)
    archived: bool
    created_at: datetime
    settings: WebhookSettings = Field(description="The tool without its secrets.")
    secret_headers: list[str] = Field(
        default_factory=list, description="Names of the headers whose values are secret."
    )
    signing_secret: str | None = Field(
        default=None,
        description="Only in the reply that generated it: keep it, it is not shown again.",
    )


class ToolRecordReply(Reply):
    """Reply carrying one tool version."""

    record: ToolRecord | None = Field(default=None, description="The tool, when ok.")


class ToolsPage(Reply):
    """Reply of ``tools.list``."""

    tools: list[ToolRecord] = Field(default_factory=list)


class ToolVersionsPage(Reply):
    """Reply of ``tools.versions``: newest first."""

    versions: list[AgentVersionInfo] = Field(default_factory=list)
