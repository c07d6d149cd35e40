"""Scenario evals: the file format, the checks, the reports. Pure (no I/O but the parse).

A scenario file names an agent and holds scenarios; each scenario is caller turns
(``say`` or ``dtmf``) with expectations per turn and for the whole call::

    agent: demo-scripted          # agent id (its current version unless `version:`)
    context: {customer_name: Ada} # call context variables, for every scenario
    scenarios:
      - name: order found
        greeting: {reply_contains: [Acme]}
        turns:
          - say: Where is my order 1234?
            expect:
              reply_contains: [shipped]
              tools: [{name: check_order_status, arguments: {order_id: "1234"}}]
        expect: {ended: false}

Text checks ignore case and repeated spaces; ``arguments`` of an expected tool call
are a subset of the call's. A ``rubric`` is graded by an LLM judge when one is configured
(:mod:`.judge`); without one it is reported as skipped, never as passed. So is a
``latency_p95_ms`` budget in a text eval (only ``--audio`` times turns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self
from xml.etree import ElementTree as ET

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voicebus.contracts.replay import CallerInput, RecordedResult, TurnRecord, normalize, percentile


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ToolExpectation(_Strict):
    """A tool the agent must call; ``arguments`` must be among the call's."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class TurnExpectation(_Strict):
    """What the agent must do in answer to one input (or before any: ``greeting``)."""

    reply_contains: list[str] = Field(default_factory=list)
    reply_not_contains: list[str] = Field(default_factory=list)
    reply_matches: str | None = None
    tools: list[ToolExpectation] = Field(default_factory=list)
    no_tools: bool = False
    node: str | None = None
    ended: bool | None = None

    _lists = field_validator("reply_contains", "reply_not_contains", mode="before")(_as_list)

    @field_validator("reply_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class CallExpectation(_Strict):
    """What must hold over the whole call."""

    said: list[str] = Field(default_factory=list)
    not_said: list[str] = Field(default_factory=list)
    tools: list[ToolExpectation] = Field(default_factory=list)
    nodes_reached: list[str] = Field(default_factory=list)
    ended: bool | None = None
    latency_p95_ms: int | None = Field(default=None, ge=1)
    """Budget for the 95th percentile of the turns' latencies (measured with ``--audio``)."""

    _lists = field_validator("said", "not_said", mode="before")(_as_list)


class ScenarioTurn(_Strict):
    """One caller input and its expectations."""

    say: str | None = Field(default=None, min_length=1)
    wav: str | None = Field(default=None, min_length=1)
    """The line spoken, for ``--audio``: a mono 16-bit 16 kHz WAV file, relative to the
    scenario file (without it the line is spoken by the local caller voice)."""
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]{1,64}$")
    expect: TurnExpectation = Field(default_factory=TurnExpectation)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.say is None) == (self.dtmf is None):
            raise ValueError("give exactly one of say or dtmf")
        if self.wav is not None and self.say is None:
            raise ValueError("wav is the recording of a say line: give say too")
        return self

    def caller(self) -> CallerInput:
        """The input as the simulation takes it."""
        return CallerInput(text=self.say, dtmf=self.dtmf)


class Scenario(_Strict):
    """Caller turns and what the agent must do."""

    name: str = Field(min_length=1, max_length=200)
    context: dict[str, str] = Field(default_factory=dict)
    tool_results: list[RecordedResult] = Field(default_factory=list)
    greeting: TurnExpectation = Field(default_factory=TurnExpectation)
    turns: list[ScenarioTurn] = Field(min_length=1, max_length=200)
    expect: CallExpectation = Field(default_factory=CallExpectation)
    rubric: str | None = None


class ScenarioFile(_Strict):
    """A scenario file: the agent and its scenarios."""

    agent: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    version: int | None = Field(default=None, ge=1)
    context: dict[str, str] = Field(default_factory=dict)
    tool_results: list[RecordedResult] = Field(default_factory=list)
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names = [s.name for s in self.scenarios]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scenario names must be unique: {', '.join(twice)}")
        return self

    def request(self, scenario: Scenario) -> dict[str, Any]:
        """The body of ``POST /agents/{agent}/simulate`` for ``scenario``."""
        return {
            "version": self.version,
            "context": {**self.context, **scenario.context},
            "inputs": [t.caller().model_dump(exclude_none=True) for t in scenario.turns],
            "recorded": [r.model_dump() for r in (*scenario.tool_results, *self.tool_results)],
        }


class ScenarioError(Exception):
    """A scenario file that cannot be used; ``problems`` name each place at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(text: str) -> ScenarioFile:
    """A scenario file from its YAML text.

    Raises:
        ScenarioError: not YAML (with the line), or a field at fault (with its path).
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise ScenarioError([f"line {line}: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"not YAML: {exc}"]) from None
    try:
        return ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        ]
        raise ScenarioError(problems) from None


def _has(text: str, part: str) -> bool:
    return normalize(part) in normalize(text)


def _called(turns: Sequence[TurnRecord], wanted: ToolExpectation) -> bool:
    return any(
        step.name == wanted.name
        and all(step.arguments.get(k) == v for k, v in wanted.arguments.items())
        for turn in turns
        for step in turn.tools
    )


def check_turn(where: str, turn: TurnRecord | None, expect: TurnExpectation) -> list[str]:
    """What ``turn`` fails of ``expect``; ``where`` prefixes each failure."""
    if turn is None:
        return [f"{where}: not reached (the agent had ended the call)"]
    out = [f"{where}: reply lacks {p!r}" for p in expect.reply_contains if not _has(turn.reply, p)]
    out += [f"{where}: reply says {p!r}" for p in expect.reply_not_contains if _has(turn.reply, p)]
    if expect.reply_matches is not None and not re.search(expect.reply_matches, turn.reply):
        out.append(f"{where}: reply does not match {expect.reply_matches!r}")
    for tool in expect.tools:
        if not _called([turn], tool):
            out.append(f"{where}: no call of {tool.name} with {json.dumps(tool.arguments)}")
    if expect.no_tools and turn.tools:
        out.append(f"{where}: tools called: {', '.join(s.name for s in turn.tools)}")
    if expect.node is not None and expect.node not in turn.nodes:
        out.append(f"{where}: flow node {expect.node!r} not entered")
    if expect.ended is not None and turn.ended != expect.ended:
        out.append(f"{where}: {'did not end' if expect.ended else 'ended'} the call")
    return out


def check_call(turns: Sequence[TurnRecord], expect: CallExpectation) -> list[str]:
    """What the whole conversation fails of ``expect``."""
    said = " ".join(t.reply for t in turns)
    out = [f"call: never said {p!r}" for p in expect.said if not _has(said, p)]
    out += [f"call: said {p!r}" for p in expect.not_said if _has(said, p)]
    out += [
        f"call: no call of {t.name} with {json.dumps(t.arguments)}"
        for t in expect.tools
        if not _called(turns, t)
    ]
    nodes = {n for t in turns for n in t.nodes}
    out += [f"call: flow node {n!r} never reached" for n in expect.nodes_reached if n not in nodes]
    ended = any(t.ended for t in turns)
    if expect.ended is not None and ended != expect.ended:
        out.append(f"call: {'did not end' if expect.ended else 'ended'}")
    return out


RUBRIC_SKIPPED = "rubric: no LLM judge configured"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The LLM judge's grade of a scenario's rubric."""

    passed: bool
    reason: str


@dataclass(slots=True)
class ScenarioResult:
    """One scenario's outcome."""

    name: str
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    version: int | None = None
    duration_s: float = 0.0
    error: str | None = None
    """The scenario could not run (the edge refused it); counts as failed."""
    rubric: Verdict | None = None
    """The judge's verdict on the scenario's rubric (None: not graded)."""

    @property
    def passed(self) -> bool:
        """No failure and no error."""
        return not self.failures and self.error is None


def evaluate(scenario: Scenario, turns: Sequence[TurnRecord]) -> ScenarioResult:
    """Check a scenario's expectations against the simulation's turns (turn 0 first)."""
    result = ScenarioResult(scenario.name, turns=list(turns))
    result.failures += check_turn("greeting", turns[0] if turns else None, scenario.greeting)
    for i, step in enumerate(scenario.turns, start=1):
        turn = turns[i] if i < len(turns) else None
        result.failures += check_turn(f"turn {i}", turn, step.expect)
    result.failures += check_call(turns, scenario.expect)
    budget = scenario.expect.latency_p95_ms
    if budget is not None:
        timed = [t.latency_ms for t in turns[1:] if t.latency_ms is not None]
        p95 = percentile(timed, 0.95)
        if p95 is None:
            result.skipped.append("latency: not measured (only --audio times turns)")
        elif p95 > budget:
            result.failures.append(f"call: turn latency p95 {p95} ms over the {budget} ms budget")
    if scenario.rubric is not None:
        result.skipped.append(RUBRIC_SKIPPED)
    return result


def json_report(agent: str, results: Sequence[ScenarioResult]) -> str:
    """Every scenario with its turns and failures, as JSON."""
    body = {
        "agent": agent,
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "scenarios": [
            {
                "name": r.name, "passed": r.passed, "version": r.version, "error": r.error,
                "failures": r.failures, "skipped": r.skipped,
                "rubric": None if r.rubric is None
                else {"passed": r.rubric.passed, "reason": r.rubric.reason},
                "duration_s": round(r.duration_s, 3),
                "turns": [t.model_dump(mode="json") for t in r.turns],
            }
            for r in results
        ],
    }  # fmt: skip
    return json.dumps(body, indent=2, ensure_ascii=False)


def junit_report(suite: str, results: Sequence[ScenarioResult]) -> str:
    """JUnit XML: a test case per scenario, and a skipped one per rubric."""
    root = ET.Element("testsuites")
    cases: list[ET.Element] = []
    for r in results:
        case = ET.Element("testcase", classname=suite, name=r.name, time=f"{r.duration_s:.3f}")
        if r.error is not None:
            ET.SubElement(case, "error", message=r.error)
        elif r.failures:
            failure = ET.SubElement(case, "failure", message=r.failures[0])
            failure.text = "\n".join(r.failures)
        cases.append(case)
        for reason in r.skipped:
            what = reason.split(":", 1)[0]
            extra = ET.Element("testcase", classname=suite, name=f"{r.name} [{what}]", time="0")
            ET.SubElement(extra, "skipped", message=reason)
            cases.append(extra)
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(bool(r.failures) and r.error is None for r in results)),
        "errors": str(sum(r.error is not None for r in results)),
        "skipped": str(sum(len(r.skipped) for r in results)),
    }
    suite_el = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    suite_el.extend(cases)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def markdown_report(agent: str, results: Sequence[ScenarioResult]) -> str:
    """A summary table, then each failure."""
    passed = sum(r.passed for r in results)
    lines = [
        f"# Eval of agent `{agent}`",
        "",
        f"{passed} of {len(results)} scenario(s) passed.",
        "",
        "| scenario | result | turns | time |",
        "|---|---|---|---|",
    ]
    for r in results:
        outcome = "pass" if r.passed else ("error" if r.error else "FAIL")
        if r.skipped:
            outcome += f" ({', '.join(reason.split(':', 1)[0] for reason in r.skipped)} skipped)"
        name = r.name.replace("|", "\\|")
        lines.append(f"| {name} | {outcome} | {max(len(r.turns) - 1, 0)} | {r.duration_s:.2f}s |")
    for r in (r for r in results if not r.passed):
        lines += ["", f"## {r.name}", ""]
        lines += [f"- {problem}" for problem in ([r.error] if r.error else r.failures)]
    graded = [r for r in results if r.rubric is not None]
    if graded:
        lines += ["", "## Rubrics (LLM judge)", ""]
        lines += [
            f"- {r.name}: {'pass' if r.rubric.passed else 'FAIL'}: {r.rubric.reason}"
            for r in graded
            if r.rubric is not None
        ]
    return "\n".join(lines) + "\n"
