"""Agent definitions: structure, flow graph, templates and context, each problem with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from voicebus.contracts.agents import (
    AgentDefinition,
    DefinitionError,
    WebhookTool,
    check_context,
    parse_definition,
)

pytestmark = pytest.mark.unit

AGENTS = Path(__file__).resolve().parents[3] / "agents"


def flow_agent(**flow: Any) -> dict[str, Any]:
    nodes = [
        {"id": "greet", "task": "Greet.", "transitions": [
            {"name": "to_verify", "description": "d", "target": "verify"}]},
        {"id": "verify", "collect_digits": {"variable": "pin", "max_length": 4, "next": "done"},
         "pre_actions": [{"say": "Enter your PIN."}]},
        {"id": "done", "end": True, "pre_actions": [{"say": "Thanks, {{name}}."}]},
    ]  # fmt: skip
    return {
        "name": "Support",
        "system_prompt": "You help.",
        "variables": [{"name": "name", "default": "there"}],
        "llm": {"engine": "scripted"},
        "tools": [{"type": "end_call"}],
        "flow": {"initial": "greet", "nodes": nodes, **flow},
    }


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", sorted(AGENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_agents_are_valid(path: Path) -> None:
    definition = parse_definition(yaml.safe_load(path.read_text()))
    assert definition.name


def test_a_sound_flow_passes() -> None:
    definition = parse_definition(flow_agent())
    assert definition.flow is not None
    assert [n.id for n in definition.flow.nodes] == ["greet", "verify", "done"]


def test_a_canvas_position_is_kept_and_an_unset_one_leaves_the_json_as_before() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"][0]["position"] = {"x": 360, "y": -40.5}
    dumped = parse_definition(raw).model_dump(mode="json")
    greet, verify, _ = dumped["flow"]["nodes"]
    assert greet["position"] == {"x": 360.0, "y": -40.5}
    # No key at all, so definitions saved before positions existed keep their digest.
    assert "position" not in verify


def test_an_unknown_target_is_named_with_its_path() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"][0]["transitions"][0]["target"] = "billing"
    found = problems(raw)
    assert "flow.nodes[0].transitions[0].target: unknown node 'billing'" in found
    # verify and done can no longer be reached from greet
    assert "flow.nodes[1]: node 'verify' is unreachable from 'greet'" in found


def test_no_initial_node_and_an_unknown_one() -> None:
    assert problems(flow_agent(initial=None)) == ["flow.initial: no initial node"]
    assert problems(flow_agent(initial="nowhere")) == ["flow.initial: unknown node 'nowhere'"]


def test_structural_errors_name_list_positions() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"][2]["pre_actions"][0] = {"say": "x", "set": {"a": 1}}
    raw["tools"].append({"type": "data", "name": "lookup", "description": "d", "file": "/etc/x"})
    found = problems(raw)
    assert any(p.startswith("tools[1].file:") for p in found), found
    assert "flow.nodes[2].pre_actions[0]: an action has exactly one of say, tool, set" in found


def test_undeclared_template_variables_are_refused() -> None:
    raw = flow_agent()
    raw["greeting"] = "Hi {{customer}}"
    raw["flow"]["nodes"][0]["task"] = "Greet {{pin}} and {{nobody.field}}"
    found = problems(raw)
    assert any(p.startswith("greeting: uses {{customer}}") for p in found), found
    # pin is set by the flow (collect_digits): only 'nobody' is unknown in a node
    assert any(p.startswith("flow.nodes[0].task: uses {{nobody}}") for p in found), found


def test_node_tools_and_transition_names_are_checked() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"][0]["tools"] = ["end_call", "refund"]
    raw["flow"]["nodes"][0]["transitions"].append(
        {"name": "end_call", "description": "d", "target": "done"}
    )
    found = problems(raw)
    assert "flow.nodes[0].tools[1]: unknown tool 'refund'" in found
    assert "flow.nodes[0].transitions[1].name: 'end_call' is also a tool name" in found


def test_a_node_is_one_kind_and_end_nodes_have_no_transitions() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"][2]["handoff"] = {"agent_id": "billing"}
    raw["flow"]["nodes"][2]["transitions"] = [{"name": "x", "description": "d", "target": "greet"}]
    found = problems(raw)
    assert "flow.nodes[2]: a node is one kind only, not handoff and end" in found
    assert "flow.nodes[2].transitions: an end or handoff node has none" in found


def test_duplicate_nodes_and_tools() -> None:
    raw = flow_agent()
    raw["flow"]["nodes"].append({"id": "done", "end": True})
    raw["tools"].append({"type": "end_call"})
    found = problems(raw)
    assert "flow.nodes[3].id: duplicate node 'done'" in found
    assert "tools[1].name: duplicate tool name 'end_call'" in found


def test_search_knowledge_is_reserved_in_knowledge_tool_mode() -> None:
    raw = flow_agent()
    raw["tools"].append({"type": "end_call", "name": "search_knowledge"})
    reserved = "tools[1].name: reserved by knowledge (mode: tool)"
    parse_definition(raw)  # no knowledge: the name is free
    raw["knowledge"] = {"bases": ["faq"], "mode": "tool"}
    assert reserved in problems(raw)
    raw["knowledge"] = {"bases": ["faq"], "mode": "context"}
    parse_definition(raw)
    # A flow node offers it by name only when the agent searches as a tool.
    raw["tools"].pop()
    raw["flow"]["nodes"][0]["tools"] = ["search_knowledge"]
    assert "flow.nodes[0].tools[0]: unknown tool 'search_knowledge'" in problems(raw)
    raw["knowledge"]["mode"] = "tool"
    parse_definition(raw)
    with pytest.raises(ValidationError, match=r"knowledge\.bases"):
        AgentDefinition.model_validate({**raw, "knowledge": {"bases": ["no spaces"]}})


def test_context_is_checked_against_the_variables() -> None:
    definition = AgentDefinition.model_validate(
        {
            "name": "x",
            "system_prompt": "p",
            "llm": {"engine": "scripted"},
            "variables": [
                {"name": "customer_id", "required": True},
                {"name": "age", "type": "integer"},
            ],
        }
    )
    assert [str(p) for p in check_context(definition, {"age": "x"})] == [
        "context.customer_id: required variable is missing",
        "context.age: must be an integer",
    ]
    assert check_context(definition, {"customer_id": "7", "age": "42"}) == []


def test_webhook_tools_retry_only_idempotent_methods_and_hide_secrets() -> None:
    base = {"name": "lookup", "description": "d", "url": "https://api.example/x"}
    with pytest.raises(ValidationError, match="may not be retried"):
        WebhookTool.model_validate({**base, "method": "POST", "retries": 2})
    tool = WebhookTool.model_validate(
        {**base, "method": "GET", "retries": 2, "secret_headers": {"Authorization": "Bearer s3"}}
    )
    assert "s3" not in repr(tool)
    assert "s3" in tool.model_dump_json()  # requests carry it; reads never return it
    assert "secret_headers" not in tool.settings().model_dump()
    with pytest.raises(ValidationError, match="type: object"):
        WebhookTool.model_validate({**base, "parameters": {"type": "string"}})
