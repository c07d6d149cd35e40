"""The AGENTS_GET answer: the profile, 404 for an unknown agent, 400 for a bad request."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebus.contracts.rpc import GetAgent
from voicebus.orchestrator.agents import AgentCatalog
from voicebus.orchestrator.handlers import get_agent

pytestmark = pytest.mark.unit

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"


@pytest.fixture(scope="module")
def catalog() -> AgentCatalog:
    return AgentCatalog.load(REPO_AGENTS, {})


def test_a_known_agent_gets_its_profile(catalog: AgentCatalog) -> None:
    reply = get_agent(
        GetAgent(tenant_id="acme", agent_id="demo").model_dump_json().encode(), catalog
    )
    assert reply.ok
    assert reply.error is None
    assert reply.agent is not None
    assert reply.agent.agent_id == "demo"
    assert reply.agent.stt.engine == "whisper-local"
    assert reply.agent.tts.options == {"voice": "heart"}


def test_an_unknown_agent_is_a_404(catalog: AgentCatalog) -> None:
    raw = GetAgent(tenant_id="acme", agent_id="demo2").model_dump_json().encode()
    reply = get_agent(raw, catalog)
    assert not reply.ok
    assert reply.agent is None
    assert reply.error is not None
    assert (reply.error.status, reply.error.code) == (404, "agent_not_found")
    assert "demo2" in reply.error.message


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"tenant_id": "a.b", "agent_id": "x"}'])
def test_a_malformed_request_is_a_400(catalog: AgentCatalog, raw: bytes) -> None:
    reply = get_agent(raw, catalog)
    assert not reply.ok
    assert reply.error is not None
    assert (reply.error.status, reply.error.code) == (400, "bad_request")
