"""Scenario files: parsed with every fault named, checked against turns, reported."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from voicebus.cli.scenarios import (
    ScenarioError,
    evaluate,
    json_report,
    junit_report,
    markdown_report,
    parse,
)
from voicebus.contracts.replay import CallerInput, ToolStep, TurnRecord

pytestmark = pytest.mark.unit

DEMO = Path(__file__).resolve().parents[3] / "agents" / "evals" / "demo.yaml"

FILE = """
agent: support
context: {customer_name: Ada}
tool_results: [{name: crm, result: {plan: gold}}]
scenarios:
  - name: order
    greeting: {reply_contains: Hi Ada}
    turns:
      - say: where is order 1234
        expect:
          reply_contains: [shipped]
          tools: [{name: lookup, arguments: {id: "1234"}}]
          node: answer
      - dtmf: "1#"
        expect: {ended: true}
    expect: {said: [goodbye], not_said: [cancelled], nodes_reached: [answer], ended: true}
    rubric: polite
"""

TURNS = [
    TurnRecord(reply="Hi Ada!"),
    TurnRecord(caller=CallerInput(text="where is order 1234"), reply="It SHIPPED.",
               tools=[ToolStep(name="lookup", arguments={"id": "1234", "x": 1})], nodes=["answer"]),
    TurnRecord(caller=CallerInput(dtmf="1#"), reply="Goodbye", ended=True),
]  # fmt: skip


def test_the_repositorys_scenario_file_parses() -> None:
    spec = parse(DEMO.read_text())
    assert spec.agent == "demo-scripted"
    assert len(spec.scenarios) == 4


def test_a_scenario_meeting_every_expectation_passes_and_its_rubric_is_skipped() -> None:
    spec = parse(FILE)
    result = evaluate(spec.scenarios[0], TURNS)
    assert result.failures == []
    assert result.passed
    assert result.skipped == ["rubric: no LLM judge configured"]
    body = spec.request(spec.scenarios[0])
    assert body["inputs"] == [{"text": "where is order 1234"}, {"dtmf": "1#"}]
    assert body["context"] == {"customer_name": "Ada"}
    assert body["recorded"][0]["name"] == "crm"


def test_each_unmet_expectation_is_a_failure_naming_its_turn() -> None:
    spec = parse(FILE)
    wrong = [
        TurnRecord(reply="Hello"),
        TurnRecord(caller=CallerInput(text="x"), reply="It was cancelled.",
                   tools=[ToolStep(name="lookup", arguments={"id": "9"})]),
    ]  # fmt: skip
    result = evaluate(spec.scenarios[0], wrong)
    assert result.failures == [
        "greeting: reply lacks 'Hi Ada'",
        "turn 1: reply lacks 'shipped'",
        'turn 1: no call of lookup with {"id": "1234"}',
        "turn 1: flow node 'answer' not entered",
        "turn 2: not reached (the agent had ended the call)",
        "call: never said 'goodbye'",
        "call: said 'cancelled'",
        "call: flow node 'answer' never reached",
        "call: did not end",
    ]
    assert not result.passed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("agent: a\nscenarios: [\n", "line 3"),
        ("agent: a\nscenarios: []\n", "scenarios: List should have at least 1 item"),
        ("agent: a\nscenarios: [{name: n, turns: [{say: hi, dtmf: '1'}]}]\n",
         "scenarios.0.turns.0: Value error, give exactly one of say or dtmf"),
        ("agent: a\nscenarios: [{name: n, turns: [{say: hi, expect: {reply_matches: '('}}]}]\n",
         "scenarios.0.turns.0.expect.reply_matches: Value error, not a regular expression"),
        ("agent: a\nscenarios: [{name: n, turns: [{say: hi, expect: {sayz: x}}]}]\n",
         "scenarios.0.turns.0.expect.sayz: Extra inputs are not permitted"),
        ("agent: a\nscenarios: [{name: n, turns: [{say: a}]}, {name: n, turns: [{say: b}]}]\n",
         "scenario names must be unique: n"),
        ("agent: a\nscenarios: [{name: n, turns: [{dtmf: '1', wav: a.wav}]}]\n",
         "scenarios.0.turns.0: Value error, wav is the recording of a say line: give say too"),
        ("agent: a\nscenarios: [{name: n, turns: [{say: a}], expect: {latency_p95_ms: 0}}]\n",
         "scenarios.0.expect.latency_p95_ms: Input should be greater than or equal to 1"),
    ],
)  # fmt: skip
def test_a_bad_file_names_where_it_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(text)
    assert any(p.startswith(problem) or problem in p for p in caught.value.problems), (
        caught.value.problems
    )


def test_reports_count_failures_and_skipped_rubrics() -> None:
    spec = parse(FILE)
    good = evaluate(spec.scenarios[0], TURNS)
    bad = evaluate(spec.scenarios[0], TURNS[:1])
    bad.name = "order again"
    root = ElementTree.fromstring(junit_report("demo", [good, bad]))  # noqa: S314 - built here
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    failure = suite.find("testcase[@name='order again']/failure")
    assert failure is not None
    assert failure.get("message") == "turn 1: not reached (the agent had ended the call)"
    assert '"passed": 1' in json_report("support", [good, bad])
    markdown = markdown_report("support", [good, bad])
    assert "1 of 2 scenario(s) passed." in markdown
    assert "- turn 2: not reached (the agent had ended the call)" in markdown


def test_a_latency_budget_is_checked_on_timed_turns_and_skipped_on_untimed_ones() -> None:
    spec = parse(
        "agent: a\nscenarios: [{name: fast, turns: [{say: x}, {say: y}],"
        " expect: {latency_p95_ms: 800}}]\n"
    )
    scenario = spec.scenarios[0]
    heard = [CallerInput(text="x"), CallerInput(text="y")]
    timed = [TurnRecord(latency_ms=5000)]  # the greeting is not a turn to time
    timed += [TurnRecord(caller=c, latency_ms=ms) for c, ms in zip(heard, [700, 900], strict=True)]
    slow = evaluate(scenario, timed)
    assert slow.failures == ["call: turn latency p95 900 ms over the 800 ms budget"]
    quick = [timed[0], timed[1], timed[2].model_copy(update={"latency_ms": 650})]
    assert evaluate(scenario, quick).passed
    untimed = evaluate(scenario, [TurnRecord(), *(TurnRecord(caller=c) for c in heard)])
    assert untimed.passed
    assert untimed.skipped == ["latency: not measured (only --audio times turns)"]
    root = ElementTree.fromstring(junit_report("demo", [untimed]))  # noqa: S314 - built here
    assert root.find("testsuite/testcase[@name='fast [latency]']/skipped") is not None
    assert "| fast | pass (latency skipped) |" in markdown_report("a", [untimed])
