"""The agent list the REST edge asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebus.contracts.rpc import GetAgent, ListAgents
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.edge_rpc import list_agents
from voicebus.orchestrator.handlers import get_agent

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


def test_an_agent_naming_its_tenants_serves_only_them(tmp_path: Path) -> None:
    (tmp_path / "private.yaml").write_text(
        "name: Private\nsystem_prompt: Hi.\nllm: {engine: scripted}\ntenants: [acme]\n",
        encoding="utf-8",
    )
    (tmp_path / "shared.yaml").write_text(
        "name: Shared\nsystem_prompt: Hi.\nllm: {engine: scripted}\n", encoding="utf-8"
    )
    catalog = AgentCatalog.load(tmp_path, {})
    acme = list_agents(ListAgents(tenant_id="acme").model_dump_json().encode(), catalog)
    globex = list_agents(ListAgents(tenant_id="globex").model_dump_json().encode(), catalog)
    assert [a.agent_id for a in acme.agents] == ["private", "shared"]
    assert [a.agent_id for a in globex.agents] == ["shared"]
    hidden = get_agent(
        GetAgent(tenant_id="globex", agent_id="private").model_dump_json().encode(), catalog
    )
    assert hidden.error is not None
    assert hidden.error.status == 404
    shown = get_agent(
        GetAgent(tenant_id="acme", agent_id="private").model_dump_json().encode(), catalog
    )
    assert shown.ok
