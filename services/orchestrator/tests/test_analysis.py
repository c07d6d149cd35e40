"""Post-call analysis, the pure part: prompt, lenient JSON reading, schema checks, result."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from voicebus.contracts.agents import AgentDefinition, AnalysisSettings, SuccessMode
from voicebus.orchestrator.analysis import (
    HEADER,
    AnswerError,
    check,
    parse_answer,
    repair_request,
    request,
    result,
    schema_problems,
    transcript,
)
from voicebus.orchestrator.session import StoredMessage

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^[0-9]+$"},
        "callback_requested": {"type": "boolean"},
    },
    "required": ["order_id", "callback_requested"],
    "additionalProperties": False,
}


def _settings(**overrides: Any) -> AnalysisSettings:
    values: dict[str, Any] = {
        "extraction": SCHEMA,
        "success_rubric": "The caller learned the order's status.",
        "dispositions": ["resolved", "callback"],
    }
    return AnalysisSettings.model_validate(values | overrides)


def _good() -> dict[str, Any]:
    return {
        "summary": "The caller asked about order 1234.",
        "extraction": {"order_id": "1234", "callback_requested": False},
        "success": {"passed": True, "reason": "They were told it shipped."},
        "disposition": "resolved",
    }


def test_the_transcript_has_caller_agent_and_tool_lines_and_no_system_prompt() -> None:
    history = [
        StoredMessage(role="system", content="You are secret instructions."),
        StoredMessage.assistant("Hi, how can I help?", "u1", fixed=True),
        StoredMessage(role="user", content="Where is   my order 1234?"),
        StoredMessage(role="tool", content='{"status": "shipped"}', name="check_order_status"),
        StoredMessage.assistant("", "u2"),  # an emptied (interrupted) reply says nothing
    ]
    assert transcript(history) == [
        "Agent: Hi, how can I help?",
        "Caller: Where is my order 1234?",
        'Tool check_order_status: {"status": "shipped"}',
    ]


def test_the_request_asks_for_exactly_what_the_agent_wants() -> None:
    lines = ["Caller: where is order 1234?", "Agent: It shipped."]
    system, user = request(_settings(), lines, memory=False)
    assert system.role == "system"
    assert "JSON" in system.content
    assert user.content.startswith(HEADER)
    assert json.dumps(SCHEMA, separators=(",", ":")) in user.content
    assert '"passed": true or false' in user.content
    assert '["resolved", "callback"]' in user.content
    assert "caller_name" not in user.content
    assert user.content.endswith("Caller: where is order 1234?\nAgent: It shipped.")

    _, only = request(AnalysisSettings(summary=True), lines, memory=True)
    assert '"summary"' in only.content
    assert '"extraction"' not in only.content
    assert '"success"' not in only.content
    assert '"caller_name"' in only.content
    assert '"open_issues"' in only.content


def test_a_long_transcript_keeps_its_end() -> None:
    lines = [f"Caller: line {i} " + "x" * 80 for i in range(100)]
    (_, user) = request(_settings(max_transcript_chars=500), lines, memory=False)
    body = user.content.split("Transcript:\n", 1)[1]
    assert len(body) <= 500
    assert body.endswith(lines[-1])
    assert "line 0 " not in body


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Sure! Here is the analysis: {"a": 1} Hope that helps.',
    ],
)
def test_answers_are_read_leniently(text: str) -> None:
    assert parse_answer(text) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("no json here", "no JSON object"),
        ('{"a": 1,}', "invalid JSON"),
        ('{"summary": "cut off', "no JSON object"),
        ("[1, 2]", "no JSON object"),
    ],
)
def test_unreadable_answers_say_why(text: str, why: str) -> None:
    with pytest.raises(AnswerError, match=why):
        parse_answer(text)


def test_a_valid_answer_has_no_problems() -> None:
    checked = check(_settings(), _good(), memory=False)
    assert checked.problems == []
    assert checked.extraction == {"order_id": "1234", "callback_requested": False}
    assert checked.success is not None
    assert checked.success.passed is True
    assert checked.disposition == "resolved"


def test_schema_violations_name_their_path() -> None:
    bad = {"order_id": "12a4", "callback_requested": "yes", "extra": 1}
    problems = schema_problems(SCHEMA, bad)
    assert any(p.startswith("extraction.order_id:") for p in problems)
    assert any(p.startswith("extraction.callback_requested:") and "boolean" in p for p in problems)
    assert any("extra" in p for p in problems)
    assert schema_problems(SCHEMA, None) == ["extraction: None is not of type 'object'"]


def test_an_invalid_answer_keeps_its_valid_parts_and_lists_every_problem() -> None:
    answer = _good() | {
        "extraction": {"order_id": "1234"},
        "success": {"passed": "maybe"},
        "disposition": "happy",
    }
    checked = check(_settings(), answer, memory=False)
    assert checked.summary == "The caller asked about order 1234."
    assert checked.extraction is None
    assert checked.success is None
    assert checked.disposition is None
    assert len(checked.problems) == 3
    assert "'callback_requested' is a required property" in checked.problems[0]
    assert checked.problems[1] == "success.passed: must be true or false"
    assert checked.problems[2].startswith("disposition: must be one of")


def test_score_mode_wants_a_number_from_0_to_10() -> None:
    settings = _settings(success_mode=SuccessMode.SCORE)
    good = check(settings, _good() | {"success": {"score": 7, "reason": "ok"}}, memory=False)
    assert good.success is not None
    assert (good.success.score, good.success.passed) == (7.0, None)
    for score in (11, True, "7"):
        bad = check(settings, _good() | {"success": {"score": score}}, memory=False)
        assert bad.problems == ["success.score: must be a number from 0 to 10"]


def test_caller_notes_are_best_effort() -> None:
    answer = {"summary": "s", "caller_name": " Ada ", "open_issues": ["refund", 3, ""]}
    notes = check(AnalysisSettings(), answer, memory=True).notes
    assert notes.name == "Ada"
    assert notes.open_issues == ("refund",)
    assert notes.preferences == ()
    assert check(AnalysisSettings(), {"summary": "s"}, memory=True).problems == []


def test_the_repair_request_quotes_the_bad_answer_and_the_problems() -> None:
    first = request(_settings(), ["Caller: hi"], memory=False)
    repair = repair_request(first, '{"summary": 1}', ["summary: must be a non-empty string"])
    assert repair[:2] == first
    assert repair[2].role == "assistant"
    assert repair[2].content == '{"summary": 1}'
    assert repair[3].role == "user"
    assert "summary: must be a non-empty string" in repair[3].content


def test_a_failed_analysis_keeps_the_error_and_the_raw_text() -> None:
    checked = check(_settings(), _good() | {"disposition": "happy"}, memory=False)
    data = result(checked, agent_id="a", agent_version=1, engine="scripted", turns=2, raw="{..}")
    assert not data.ok
    assert data.error is not None
    assert data.error.startswith("disposition:")
    assert data.raw == "{..}"
    assert data.summary == "The caller asked about order 1234."

    none = result(None, agent_id="a", agent_version=1, engine=None, turns=0, error="LLM down")
    assert (none.ok, none.error, none.raw) == (False, "LLM down", None)

    fine = check(_settings(), _good(), memory=False)
    ok = result(fine, agent_id="a", agent_version=1, engine="scripted", turns=2, raw="{...}")
    assert ok.ok
    assert (ok.error, ok.raw) == (None, None)


def test_the_definition_section_is_checked() -> None:
    with pytest.raises(ValidationError, match="type: object"):
        AnalysisSettings(extraction={"type": "string"})
    with pytest.raises(ValidationError, match="lower_snake_case"):
        AnalysisSettings(dispositions=["Resolved"])
    with pytest.raises(ValidationError, match="asks for nothing"):
        AnalysisSettings(summary=False)
    base = {"name": "x", "system_prompt": "p", "llm": {"engine": "scripted"}}
    plain = AgentDefinition.model_validate(base)
    assert plain.analysis_settings() is None
    remembers = AgentDefinition.model_validate(base | {"memory": {"enabled": True}})
    settings = remembers.analysis_settings()
    assert settings is not None
    assert settings.summary
    assert {"caller_name", "caller_memory"} <= remembers.variable_names()
