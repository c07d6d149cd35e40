"""``voicebus agent validate``: offline checks of agent files, every problem with its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicebus.cli.agent_files import dump_agent, read_agent
from voicebus.cli.main import operator_app

pytestmark = pytest.mark.unit

AGENTS = Path(__file__).resolve().parents[3] / "agents"


def test_the_shipped_agents_validate() -> None:
    result = CliRunner().invoke(operator_app(), ["agent", "validate", str(AGENTS)])
    assert result.exit_code == 0, result.output
    assert "demo.yaml: ok" in result.output


def test_a_broken_flow_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nsystem_prompt: p\nllm: {engine: scripted}\n"
        "flow: {initial: a, nodes: [{id: a, transitions: "
        "[{name: go, description: d, target: billing}]}]}\n"
    )
    result = CliRunner().invoke(operator_app(), ["agent", "validate", str(bad)])
    assert result.exit_code == 1
    assert "flow.nodes[0].transitions[0].target: unknown node 'billing'" in result.output


def test_an_exported_definition_reads_back_the_same(tmp_path: Path) -> None:
    original = read_agent(AGENTS / "demo-scripted.yaml")
    assert original.definition is not None
    copy = tmp_path / "demo-scripted.yaml"
    copy.write_text(dump_agent(original.definition))
    again = read_agent(copy)
    assert again.problems == ()
    assert again.definition == original.definition
