"""Agents and tools per tenant, versioned: the library's rules on the in-memory store
(the same rules as PostgreSQL's, which test_agent_store_integration covers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voicebus.contracts.agents.api import AgentRecord
from voicebus.engines.builtin import load_builtin_engines
from voicebus.orchestrator.catalog import AgentCatalog
from voicebus.orchestrator.library import AgentLibrary, ToolLibrary
from voicebus.orchestrator.secret_box import SecretBox, fernet_keys
from voicebus.orchestrator.versions import MemoryVersions
from voicebus.runtime.rpc import Conflict, Invalid, NotFound

pytestmark = pytest.mark.unit


def agent(prompt: str = "You help.", **extra: Any) -> dict[str, Any]:
    return {"name": "Support", "system_prompt": prompt, "llm": {"engine": "scripted"},
            "stt": {"engine": "null"}, "tts": {"engine": "silent"}, **extra}  # fmt: skip


@pytest.fixture
def changes() -> list[AgentRecord]:
    return []


@pytest.fixture
def library(changes: list[AgentRecord]) -> AgentLibrary:
    load_builtin_engines()

    async def changed(record: AgentRecord) -> None:
        changes.append(record)

    return AgentLibrary(MemoryVersions(), on_change=changed)


async def test_every_save_is_a_new_version_and_old_ones_stay(
    library: AgentLibrary, changes: list[AgentRecord]
) -> None:
    first = await library.create("acme", "support", agent("v1"))
    second = await library.update("acme", "support", agent("v2"), expected=1)
    assert (first.version, second.version, second.current_version) == (1, 2, 2)
    old = await library.get("acme", "support", 1)
    assert old.definition.system_prompt == "v1"
    assert old.current_version == 2
    assert [v.version for v in await library.history("acme", "support")] == [2, 1]
    assert [(c.version, c.archived) for c in changes] == [(1, False), (2, False)]
    with pytest.raises(Conflict) as stale:
        await library.update("acme", "support", agent("v3"), expected=1)
    assert stale.value.code == "version_conflict"
    with pytest.raises(Conflict):
        await library.create("acme", "support", agent())


async def test_another_tenants_agent_is_not_found(library: AgentLibrary) -> None:
    await library.create("acme", "support", agent())
    for call in (
        library.get("globex", "support"),
        library.update("globex", "support", agent()),
        library.archive("globex", "support"),
        library.history("globex", "support"),
    ):
        with pytest.raises(NotFound):
            await call
    assert [r.agent_id for r in await library.listing("globex")] == []


async def test_a_template_serves_every_tenant_and_an_own_agent_shadows_it(
    library: AgentLibrary,
) -> None:
    await library.create("ignored", "demo", agent("shared"), template=True)
    await library.create("acme", "demo", agent("acme's own"))
    assert (await library.get("globex", "demo")).definition.system_prompt == "shared"
    assert (await library.get("acme", "demo")).definition.system_prompt == "acme's own"
    listed = await library.listing("acme")
    assert [(r.agent_id, r.template) for r in listed] == [("demo", False)]
    with pytest.raises(NotFound):  # a tenant cannot archive the template
        await library.archive("globex", "demo")


async def test_archived_agents_take_no_new_calls(library: AgentLibrary) -> None:
    await library.create("acme", "support", agent())
    catalog = AgentCatalog(library, agents_dir=Path("."), environ={})
    assert await catalog.current("acme", "support") is not None
    archived = await library.archive("acme", "support")
    assert archived.archived
    assert await catalog.current("acme", "support") is None
    assert [r.agent_id for r in await library.listing("acme")] == []
    assert [r.agent_id for r in await library.listing("acme", include_archived=True)] == ["support"]
    with pytest.raises(Conflict):
        await library.update("acme", "support", agent())


async def test_a_bad_definition_is_a_422_naming_each_field(library: AgentLibrary) -> None:
    flow = {"initial": "a", "nodes": [
        {"id": "a", "transitions": [{"name": "go", "description": "d", "target": "billing"}]},
        {"id": "b"}]}  # fmt: skip
    with pytest.raises(Invalid) as caught:
        await library.create("acme", "x", agent(flow=flow, llm={"engine": "nope"}))
    message = caught.value.message
    assert "flow.nodes[0].transitions[0].target: unknown node 'billing'" in message
    assert "flow.nodes[1]: node 'b' is unreachable from 'a'" in message
    assert caught.value.status == 422
    with pytest.raises(Invalid, match=r"llm\.engine: no llm engine 'nope'"):
        await library.create("acme", "x", agent(llm={"engine": "nope"}))


async def test_a_tenant_agent_cannot_reach_the_platforms_files_commands_or_keys(
    library: AgentLibrary,
) -> None:
    risky = agent(
        tools=[{"type": "data", "name": "lookup", "description": "d", "file": "data/o.json"}],
        llm={"engine": "openai", "options": {"api_key_env": "OPENAI_API_KEY",
                                              "base_url": "${SECRET_URL}"}},
        mcp_servers=[{"name": "sh", "transport": "stdio", "command": "sh"}],
    )  # fmt: skip
    with pytest.raises(Invalid) as caught:
        await library.create("acme", "risky", risky)
    message = caught.value.message
    assert "tools[0]: data tools read the operator's files" in message
    assert "mcp_servers[0].transport: stdio runs a command" in message
    assert "llm.options.api_key_env:" in message
    assert "llm.options.base_url: ${VAR} reads the platform's environment" in message


async def test_import_is_idempotent(library: AgentLibrary, changes: list[AgentRecord]) -> None:
    one = await library.import_("default", "demo", agent("same"), template=True)
    two = await library.import_("default", "demo", agent("same"), template=True)
    three = await library.import_("default", "demo", agent("changed"), template=True)
    assert (one.version, two.version, three.version) == (1, 1, 2)
    assert len(changes) == 2


async def test_tool_secrets_are_sealed_and_never_returned() -> None:
    box = SecretBox(fernet_keys("dev-secret"))
    store = MemoryVersions()
    tools = ToolLibrary(store, box)
    raw = {"name": "lookup", "description": "d", "url": "https://api.example/x/{{pin}}",
           "secret_headers": {"Authorization": "Bearer s3cr3t"}}  # fmt: skip
    created = await tools.create("acme", raw)
    assert created.signing_secret  # generated, shown once
    assert created.secret_headers == ["Authorization"]
    assert "s3cr3t" not in created.model_dump_json()
    stored = await store.get("tool", "acme", "lookup")
    assert stored is not None
    assert stored.secret is not None
    assert b"s3cr3t" not in stored.secret
    assert "s3cr3t" not in str(stored.body)
    again = await tools.get("acme", "lookup")
    assert again.signing_secret is None
    # A new version without secrets keeps them (they are never read back to be resent).
    updated = await tools.update("acme", "lookup", {**raw, "secret_headers": {}, "timeout_s": 2})
    assert updated.version == 2
    assert updated.secret_headers == ["Authorization"]
    runnable = await tools.runnable("acme", "lookup")
    assert runnable is not None
    settings, secrets = runnable
    assert settings.timeout_s == 2
    assert secrets["Authorization"] == "Bearer s3cr3t"
    assert secrets["__signing_secret__"] == created.signing_secret
    with pytest.raises(NotFound):
        await tools.get("globex", "lookup")
    assert await tools.runnable("globex", "lookup") is None


async def test_tool_import_is_idempotent() -> None:
    tools = ToolLibrary(MemoryVersions(), SecretBox(fernet_keys("dev-secret")))
    raw = {"name": "lookup", "description": "d", "url": "https://api.example/x",
           "signing_secret": "whsec-one-0123456789"}  # fmt: skip
    assert (await tools.import_("acme", raw)).version == 1
    assert (await tools.import_("acme", raw)).version == 1
    changed = await tools.import_("acme", {**raw, "signing_secret": "whsec-two-0123456789"})
    assert changed.version == 2  # a new secret is a change, though it is never shown


async def test_a_tenant_node_cannot_carry_keys_and_bad_node_options_are_named(
    library: AgentLibrary,
) -> None:
    flow = {"initial": "a", "nodes": [{"id": "a", "llm_options": {"api_key": "sk-1"}}]}
    with pytest.raises(Invalid, match=r"flow\.nodes\[0\]\.llm_options\.api_key: keys in a"):
        await library.create("acme", "x", agent(flow=flow))
    flow = {"initial": "a", "nodes": [{"id": "a", "llm_options": {"delay_ms": "slow"}}]}
    with pytest.raises(Invalid, match=r"flow\.nodes\[0\]\.llm_options: scripted: invalid"):
        await library.create("acme", "x", agent(flow=flow))


class FlakyVersions(MemoryVersions):
    """The in-memory store, cut off like a PostgreSQL that went away."""

    down = False

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise ConnectionRefusedError("database unreachable")
        return await super().get(*args, **kwargs)


async def test_a_database_outage_serves_the_last_known_version() -> None:
    load_builtin_engines()
    store = FlakyVersions()
    library = AgentLibrary(store)
    await library.create("acme", "support", agent("v1"))
    known = await library.resolve("acme", "support")
    assert known is not None
    store.down = True
    assert await library.resolve("acme", "support") == known  # callers are still answered
    with pytest.raises(ConnectionRefusedError):  # never resolved here: still an error
        await library.resolve("acme", "sales")
    store.down = False
    await library.update("acme", "support", agent("v2"), expected=1)
    fresh = await library.resolve("acme", "support")
    assert fresh is not None
    assert fresh.version == 2


async def test_analysis_llm_options_are_checked_on_save_and_used_for_the_analysis(
    library: AgentLibrary,
) -> None:
    bad = {"extraction": None, "summary": True, "llm_options": {"bogus": 1}}
    with pytest.raises(Invalid, match=r"analysis\.llm_options: .*bogus"):
        await library.create("acme", "x", agent(analysis=bad))
    good = {"summary": True, "llm_options": {"default": "{}"}}
    await library.create("acme", "x", agent(analysis=good))
    catalog = AgentCatalog(library, agents_dir=Path("."), environ={})
    found = await catalog.current("acme", "x")
    assert found is not None
    engine = catalog.analysis_engine(*found)
    assert engine is not found[1]  # its own options
    assert catalog.analysis_engine(*found) is engine  # built once per version
    await library.create("acme", "plain", agent())
    plain = await catalog.current("acme", "plain")
    assert plain is not None
    assert catalog.analysis_engine(*plain) is plain[1]  # no analysis: the agent's own
