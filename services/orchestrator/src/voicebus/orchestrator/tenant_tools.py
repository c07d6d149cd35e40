"""The tools a call gets beyond the built-ins: tenant webhook tools and the agent's MCP servers.

A reference to a tool the tenant does not have (or archived) leaves the agent
without it and is reported as a ``call.error``; the call goes on.
"""

from __future__ import annotations

import logging

import httpx

from voicebus.contracts.agents import WebhookRef
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.library import SIGNING_KEY, ToolLibrary
from voicebus.orchestrator.mcp_tools import McpTools
from voicebus.orchestrator.ssrf import TargetPolicy
from voicebus.orchestrator.tools import CallTools
from voicebus.orchestrator.webhook import WebhookCall

log = logging.getLogger(__name__)


class TenantTools:
    """Builds the tenant-owned tools of each call.

    Args:
        library: tenants' webhook tools.
        policy: which non-public targets tools may reach.
    """

    def __init__(self, library: ToolLibrary, policy: TargetPolicy) -> None:
        self._library = library
        self._policy = policy
        self._mcp = McpTools(policy)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared HTTP client (created on first use; never follows redirects)."""
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    async def for_call(self, agent: Agent, tenant_id: str, call_id: str) -> CallTools:
        """The agent's webhook tools as ``tenant_id`` defines them, bound to the call."""
        out = CallTools()
        for ref in (t for t in agent.spec.tools if isinstance(t, WebhookRef)):
            found = await self._library.runnable(tenant_id, ref.name)
            if found is None:
                out.problems.append(f"webhook tool {ref.name!r} is not defined for the tenant")
                continue
            settings, secrets = found
            signing = secrets.pop(SIGNING_KEY, "")
            call = WebhookCall(
                settings, secrets, signing, self.client, self._policy, tenant_id, call_id
            )
            out.tools.append(call)
        if agent.spec.mcp_servers:
            key = (agent.owner, agent.id, agent.version)
            tools, connections, problems = await self._mcp.connect(key, agent.spec.mcp_servers)
            out.tools += tools
            out.connections += connections
            out.problems += problems
        return out

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
