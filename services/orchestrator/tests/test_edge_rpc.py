"""The agent list the REST edge asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebus.contracts.rpc import ListAgents
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.edge_rpc import list_agents

pytestmark = pytest.mark.unit

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"


def test_every_agent_is_listed_by_id() -> None:
    catalog = AgentCatalog.load(REPO_AGENTS, {})
    reply = list_agents(ListAgents(tenant_id="acme").model_dump_json().encode(), catalog)
    assert reply.ok
    assert [a.agent_id for a in reply.agents] == catalog.ids()
    assert "demo" in catalog.ids()


def test_an_empty_catalog_lists_nothing() -> None:
    reply = list_agents(b'{"tenant_id": "acme"}', AgentCatalog())
    assert reply.ok
    assert reply.agents == []


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"tenant_id": "a.b"}', b"[1]"])
def test_a_malformed_request_is_a_400(raw: bytes) -> None:
    reply = list_agents(raw, AgentCatalog())
    assert not reply.ok
    assert reply.error is not None
    assert reply.error.status == 400
