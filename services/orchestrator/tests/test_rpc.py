"""The agents answers: the profile, 404 for an unknown or another tenant's agent, 400/422."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebus.contracts.rpc import AgentReply, GetAgent, ListAgents
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.rpc import get_agent, list_agents
from voicebus.runtime.rpc import NotFound
from voicebus.runtime.rpc.server import answer

pytestmark = pytest.mark.unit

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"


@pytest.fixture(scope="module")
def catalog() -> AgentCatalog:
    return AgentCatalog.load(REPO_AGENTS, {})


def test_a_known_agent_gets_its_profile(catalog: AgentCatalog) -> None:
    reply = get_agent(GetAgent(tenant_id="acme", agent_id="demo"), catalog)
    assert reply.ok
    assert reply.error is None
    assert reply.agent is not None
    assert reply.agent.agent_id == "demo"
    assert reply.agent.stt.engine == "whisper-local"
    assert reply.agent.tts.options == {"voice": "heart"}


def test_an_unknown_agent_is_not_found(catalog: AgentCatalog) -> None:
    with pytest.raises(NotFound) as caught:
        get_agent(GetAgent(tenant_id="acme", agent_id="demo2"), catalog)
    assert (caught.value.status, caught.value.code) == (404, "agent_not_found")
    assert "demo2" in caught.value.message


def test_the_list_holds_the_tenants_agents(catalog: AgentCatalog) -> None:
    page = list_agents(ListAgents(tenant_id="acme"), catalog)
    assert page.ok
    assert "demo" in [a.agent_id for a in page.agents]


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"", 400), (b"{not json", 400), (b'{"tenant_id": "a.b", "agent_id": "x"}', 422)],
)
async def test_a_malformed_request_is_answered_with_its_fault(
    catalog: AgentCatalog, raw: bytes, status: int
) -> None:
    async def handle(request: GetAgent) -> AgentReply:
        return get_agent(request, catalog)

    reply = await answer(raw, GetAgent, AgentReply, handle, "orchestrator.agents.get")
    assert not reply.ok
    assert reply.error is not None
    assert reply.error.status == status


def test_an_empty_catalog_lists_nothing() -> None:
    page = list_agents(ListAgents(tenant_id="acme"), AgentCatalog())
    assert page.ok
    assert page.agents == []


def test_an_agent_naming_its_tenants_serves_only_them(tmp_path: Path) -> None:
    (tmp_path / "private.yaml").write_text(
        "name: Private\nsystem_prompt: Hi.\nllm: {engine: scripted}\ntenants: [acme]\n",
        encoding="utf-8",
    )
    (tmp_path / "shared.yaml").write_text(
        "name: Shared\nsystem_prompt: Hi.\nllm: {engine: scripted}\n", encoding="utf-8"
    )
    catalog = AgentCatalog.load(tmp_path, {})
    acme = list_agents(ListAgents(tenant_id="acme"), catalog)
    globex = list_agents(ListAgents(tenant_id="globex"), catalog)
    assert [a.agent_id for a in acme.agents] == ["private", "shared"]
    assert [a.agent_id for a in globex.agents] == ["shared"]
    with pytest.raises(NotFound):
        get_agent(GetAgent(tenant_id="globex", agent_id="private"), catalog)
    shown = get_agent(GetAgent(tenant_id="acme", agent_id="private"), catalog)
    assert shown.agent is not None
