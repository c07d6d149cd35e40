"""Agent files: loading, validation errors naming file and field, templating, profiles."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from voicebus.orchestrator.agents import load_agent
from voicebus.orchestrator.errors import AgentConfigError, TemplateError
from voicebus.orchestrator.templating import expand_env, render, variables

pytestmark = pytest.mark.unit

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"

MINIMAL = """
name: Test agent
system_prompt: You help {{customer_name}}.
greeting: Hi {{customer_name}}!
defaults: {customer_name: there}
llm: {engine: scripted, options: {default: ok}}
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_minimal_file_loads_with_defaults_for_the_rest(tmp_path: Path) -> None:
    agent = load_agent(_write(tmp_path, "support.yaml", MINIMAL), {})
    assert agent.id == "support"
    assert agent.spec.stt.engine == "whisper-local"
    assert agent.spec.tts.engine == "hibari"
    assert agent.spec.turn.allow_interruptions is True
    assert agent.tools == ()
    profile = agent.profile
    assert profile.agent_id == "support"
    assert profile.name == "Test agent"
    assert profile.turn.vad_stop_ms == 300


def test_the_call_context_overrides_defaults_and_extra_context_is_ignored(tmp_path: Path) -> None:
    agent = load_agent(_write(tmp_path, "a.yaml", MINIMAL), {})
    assert agent.render("greeting", {}) == "Hi there!"
    assert agent.render("greeting", {"customer_name": "Ada", "x": "y"}) == "Hi Ada!"
    assert agent.render("system_prompt", {"customer_name": "Ada"}) == "You help Ada."
    with pytest.raises(TemplateError):
        agent.render("name", {})


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"greeting": "Hi {{nmae}}"}, "greeting", "uses {{nmae}}, not a declared variable"),
        ({"goodbye": "Bye {{a}} {{b}}"}, "goodbye", "uses {{a}}, {{b}}"),
        ({"llm": None}, "llm", "Input should be a valid dictionary"),
        ({"temprature": 1}, "temprature", "Extra inputs are not permitted"),
        ({"turn": {"vad_stop_ms": 5}}, "turn.vad_stop_ms", "greater than or equal to 100"),
        ({"turn": {"barge_in": True}}, "turn.barge_in", "Extra inputs"),
        (
            {"tts": {"engine": "hibari", "options": {"v": [1]}}},
            "tts.options.v",
            "must be a string, number or boolean",
        ),
        (
            {"tools": [{"type": "data", "name": "x", "description": "d"}]},
            "tools[0].file",
            "required",
        ),
        (
            {"tools": [{"type": "http", "name": "x"}]},
            "tools[0]",
            "does not match any of the expected",
        ),
        (
            {"tools": [{"type": "end_call"}, {"type": "end_call"}]},
            "tools[1].name",
            "duplicate tool name",
        ),
    ],
)
def test_a_bad_field_is_an_error_naming_the_file_and_the_field(
    tmp_path: Path, change: dict[str, object], field: str, problem: str
) -> None:
    base: dict[str, object] = {
        "name": "x",
        "system_prompt": "p",
        "llm": {"engine": "scripted"},
    }
    path = tmp_path / "broken.yaml"
    path.write_text(json.dumps({**base, **change}), encoding="utf-8")  # JSON is YAML
    with pytest.raises(AgentConfigError) as caught:
        load_agent(path, {})
    message = str(caught.value)
    assert f"{field}: " in message
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert caught.value.field == field


def test_unreadable_yaml_and_bad_file_names_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match=r"bad\.yaml: not valid YAML"):
        load_agent(_write(tmp_path, "bad.yaml", "name: [unclosed\n"), {})
    with pytest.raises(AgentConfigError, match=r"list\.yaml: must be a YAML mapping"):
        load_agent(_write(tmp_path, "list.yaml", "- a\n- b\n"), {})
    with pytest.raises(AgentConfigError, match=r"file name must be <agent_id>\.yaml"):
        load_agent(_write(tmp_path, "has space.yaml", MINIMAL), {})


def test_data_tool_files_are_checked_at_load(tmp_path: Path) -> None:
    tool = """
    tools:
      - {type: data, name: lookup, description: d, file: data/missing.json}
    """
    path = _write(tmp_path, "t.yaml", MINIMAL + textwrap.dedent(tool))
    with pytest.raises(AgentConfigError, match=r"t\.yaml: tools\[0\]: cannot read .*missing\.json"):
        load_agent(path, {})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "missing.json").write_text("[1, 2]")
    with pytest.raises(AgentConfigError, match="must be a JSON object of objects"):
        load_agent(path, {})
    (tmp_path / "data" / "missing.json").write_text('{"1": {"s": "ok"}}')
    agent = load_agent(path, {})
    assert [t.spec.name for t in agent.tools] == ["lookup"]
    assert agent.tools[0].spec.parameters["required"] == ["id"]


def test_engine_options_expand_environment_variables(tmp_path: Path) -> None:
    text = """
    name: x
    system_prompt: p
    llm:
      engine: openai
      options:
        base_url: ${LLM_URL:-http://127.0.0.1:8089/v1}
        model: ${LLM_MODEL}
        nested: [{deep: "${LLM_MODEL}-x"}]
    """
    path = _write(tmp_path, "env.yaml", text)
    agent = load_agent(path, {"LLM_MODEL": "qwen"})
    assert agent.spec.llm.options == {
        "base_url": "http://127.0.0.1:8089/v1",
        "model": "qwen",
        "nested": [{"deep": "qwen-x"}],
    }
    agent = load_agent(path, {"LLM_MODEL": "m", "LLM_URL": "http://h/v1"})
    assert agent.spec.llm.options["base_url"] == "http://h/v1"
    with pytest.raises(AgentConfigError, match=r"env\.yaml: llm\.options\.model: .*LLM_MODEL"):
        load_agent(path, {})


def test_the_shipped_agents_load() -> None:
    for agent_id in ("demo", "demo-scripted"):
        agent = load_agent(REPO_AGENTS / f"{agent_id}.yaml", {})
        assert agent.render("greeting", {}) == "Hi there, this is Acme support. How can I help?"
        assert agent.render("greeting", {"customer_name": "Ada"}).startswith("Hi Ada,")
    scripted = load_agent(REPO_AGENTS / "demo-scripted.yaml", {})
    assert {t.spec.name for t in scripted.tools} == {"end_call", "check_order_status"}
    demo = load_agent(REPO_AGENTS / "demo.yaml", {})
    assert demo.spec.flow is not None
    assert [n.id for n in demo.spec.flow.nodes] == ["help", "goodbye"]
    assert demo.tools == ()  # its order_status is the tenant's webhook tool, bound per call
    assert demo.spec.llm.engine == "openai"
    assert demo.spec.llm.options["base_url"] == "http://127.0.0.1:8089/v1"


def test_templating_helpers() -> None:
    assert variables("{{a}} {{ b }} {{a}} {x} {{1x}}") == {"a", "b"}
    assert render("{{ a }}-{{b}}", {"a": "1", "b": ""}) == "1-"
    with pytest.raises(TemplateError, match="'c'"):
        render("{{c}}", {})
    assert render("{{c}} {{r.name}} {{r.x.y}}", {"r": {"name": "Ada"}}, strict=False) == " Ada "
    assert expand_env(7, {}) == 7
    assert expand_env("${A:-}x", {}) == "x"


@pytest.mark.parametrize(
    ("section", "field", "problem"),
    [
        ("tts: {engine: deepgram, options: {voice: nobody}}", "tts.options.voice", "'nobody'"),
        ("stt: {engine: whisper-local, options: {language: xx}}", "stt.options.language", "'xx'"),
        ("stt: {engine: whisper-local, options: {model: huge}}", "stt.options.model", "'huge'"),
        ("tts: {engine: hibari, fallback: [{engine: nope}]}", "tts.fallback[0].engine", "nope"),
        ("stt: {engine: deepgram, options: {modle: nova-3}}", "stt.options.modle", "unknown"),
    ],
)
def test_engine_choices_are_checked_at_load_naming_the_field(
    tmp_path: Path, section: str, field: str, problem: str
) -> None:
    path = _write(tmp_path, "voices.yaml", MINIMAL + section + "\n")
    with pytest.raises(AgentConfigError) as caught:
        load_agent(path, {})
    assert caught.value.field == field
    assert problem in str(caught.value)


def test_fallbacks_and_budgets_reach_the_profile(tmp_path: Path) -> None:
    text = MINIMAL + (
        "stt: {engine: whisper-local, options: {language: hi}, fallback: [{engine: 'null'}]}\n"
        "tts: {engine: deepgram, fallback: [{engine: hibari}]}\n"
        "failover: {first_audio_ms: 800}\n"
    )
    profile = load_agent(_write(tmp_path, "hindi.yaml", text), {}).profile
    assert profile.stt.options == {"language": "hi"}
    assert [c.engine for c in profile.stt_fallbacks] == ["null"]
    assert [c.engine for c in profile.tts_fallbacks] == ["hibari"]
    assert profile.fallback.first_audio_ms == 800
