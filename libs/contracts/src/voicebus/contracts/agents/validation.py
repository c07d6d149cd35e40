"""The rules of an agent definition that span fields, as pure functions.

Every problem names the path of the field at fault, written as people read it
(``flow.nodes[2].transitions[0].target: unknown node 'billing'``), so the same
text serves a 422 answer, ``voicebus agent validate`` and a ``call.error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from voicebus.contracts.agents.analysis import MEMORY_VARIABLES
from voicebus.contracts.agents.definition import AgentDefinition, value_fits
from voicebus.contracts.agents.flow import Flow, FlowAction, FlowNode
from voicebus.contracts.agents.knowledge import SEARCH_KNOWLEDGE, KnowledgeMode
from voicebus.contracts.agents.tools import AGENT_TOOL_TYPES

TEMPLATE: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\s*\}\}")
"""``{{name}}`` or ``{{name.field}}`` (a field of a variable holding a tool's result)."""
_AGENT_TEMPLATES: Final = ("system_prompt", "greeting", "goodbye", "fallback_reply")
_HYGIENE_TEMPLATES: Final = ("idle_reprompt", "idle_goodbye", "max_duration_line")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition.

    Attributes:
        path: where, e.g. ``flow.nodes[2].transitions[0].target``.
        message: what is wrong there.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DefinitionError(ValueError):
    """A definition was refused; ``problems`` lists every reason with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def template_names(text: str) -> set[str]:
    """Root variable names a template uses: ``"{{a}} {{b.c}}"`` → ``{"a", "b"}``."""
    return {match.group(1) for match in TEMPLATE.finditer(text)}


def field_path(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a path: ``("flow", "nodes", 2, "id")`` → ``flow.nodes[2].id``.

    The tag a discriminated union adds after a list index (``tools[0].data.file``) is dropped.
    """
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in AGENT_TOOL_TYPES:
            pass
        elif part not in ("function-after", "function-before"):
            out += f".{part}" if out else str(part)
        previous = part
    return out


_SCALARS: Final = ("str", "int", "float", "bool")


def validation_problems(exc: ValidationError) -> list[Problem]:
    """The problems of a pydantic validation error, with readable paths.

    A value that fits no member of a scalar union (an engine option) is one problem.
    """
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if loc and loc[-1] in _SCALARS:
            loc, message = loc[:-1], "must be a string, number or boolean"
        problem = Problem(field_path(loc), message)
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_definition(raw: Mapping[str, Any]) -> AgentDefinition:
    """Parse and fully check a definition.

    Raises:
        DefinitionError: every problem found, each with its path.
    """
    try:
        definition = AgentDefinition.model_validate(raw)
    except ValidationError as exc:
        raise DefinitionError(validation_problems(exc)) from None
    problems = check_definition(definition)
    if problems:
        raise DefinitionError(problems)
    return definition


def check_definition(definition: AgentDefinition) -> list[Problem]:
    """Every cross-field problem of a structurally valid definition (empty: it is sound)."""
    problems: list[Problem] = []
    problems += _check_tools(definition)
    declared = definition.variable_names()
    duplicates = _repeats(v.name for v in definition.variables)
    for i, spec in enumerate(definition.variables):
        if i in duplicates:
            problems.append(Problem(f"variables[{i}].name", f"{spec.name!r} is declared twice"))
        elif spec.name in definition.defaults:
            problems.append(Problem(f"variables[{i}].name", f"{spec.name!r} is also in defaults"))
    for name in _AGENT_TEMPLATES:
        problems += _undeclared(getattr(definition, name), declared, name)
    for name in _HYGIENE_TEMPLATES:
        problems += _undeclared(getattr(definition.hygiene, name), declared, f"hygiene.{name}")
    if definition.flow is not None:
        problems += check_flow(definition.flow, definition, declared)
    return problems


def _duplicates(names: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return twice


def _repeats(names: Iterable[str]) -> set[int]:
    """Positions of names already seen earlier in the list (the first one is not a repeat)."""
    seen: set[str] = set()
    out: set[int] = set()
    for i, name in enumerate(names):
        if name in seen:
            out.add(i)
        seen.add(name)
    return out


def _undeclared(text: str | None, known: set[str], path: str) -> list[Problem]:
    missing = sorted(template_names(text or "") - known)
    if not missing:
        return []
    names = ", ".join("{{" + m + "}}" for m in missing)
    return [Problem(path, f"uses {names}, not a declared variable (add it to variables)")]


def _check_tools(definition: AgentDefinition) -> list[Problem]:
    problems = []
    twice = _repeats(definition.tool_names())
    for i, tool in enumerate(definition.tools):
        if i in twice:
            problems.append(Problem(f"tools[{i}].name", f"duplicate tool name {tool.name!r}"))
        elif tool.name == SEARCH_KNOWLEDGE and _searches(definition):
            problems.append(Problem(f"tools[{i}].name", "reserved by knowledge (mode: tool)"))
    servers = _repeats(s.name for s in definition.mcp_servers)
    for i, server in enumerate(definition.mcp_servers):
        if i in servers:
            problems.append(Problem(f"mcp_servers[{i}].name", f"duplicate server {server.name!r}"))
    return problems


def _searches(definition: AgentDefinition) -> bool:
    knowledge = definition.knowledge
    return knowledge is not None and knowledge.mode is KnowledgeMode.TOOL


def flow_variables(flow: Flow) -> set[str]:
    """Variables a flow itself sets: transition arguments, digits, tool results, ``set``."""
    names: set[str] = set()
    for node in flow.nodes:
        for transition in node.transitions:
            names |= set(transition.parameters.get("properties", {}))
        if node.collect_digits is not None:
            names.add(node.collect_digits.variable)
        for action in (*node.pre_actions, *node.post_actions):
            if action.result_variable:
                names.add(action.result_variable)
            names |= set(action.set or {})
    return names


def check_flow(flow: Flow, definition: AgentDefinition, declared: set[str]) -> list[Problem]:
    """The flow's graph, names and templates."""
    problems: list[Problem] = []
    ids = [node.id for node in flow.nodes]
    twice = _duplicates(ids)
    again = _repeats(ids)
    index = {node.id: i for i, node in enumerate(flow.nodes)}
    for i, node in enumerate(flow.nodes):
        if i in again:
            problems.append(Problem(f"flow.nodes[{i}].id", f"duplicate node {node.id!r}"))
    if flow.initial is None:
        problems.append(Problem("flow.initial", "no initial node"))
    elif flow.initial not in index:
        problems.append(Problem("flow.initial", f"unknown node {flow.initial!r}"))
    known = declared | flow_variables(flow)
    tools = set(definition.tool_names())
    if _searches(definition):
        tools.add(SEARCH_KNOWLEDGE)  # a node offers it by name, like the agent's own tools
    for i, node in enumerate(flow.nodes):
        problems += _check_node(node, f"flow.nodes[{i}]", index, tools, known, definition)
    if flow.initial in index:
        reached = _reachable(flow, flow.initial)
        for i, node in enumerate(flow.nodes):
            if node.id not in reached and node.id not in twice:
                problems.append(
                    Problem(f"flow.nodes[{i}]", f"node {node.id!r} is unreachable from "
                            f"{flow.initial!r}")
                )  # fmt: skip
    return problems


def _targets(node: FlowNode) -> list[str]:
    targets = [t.target for t in node.transitions]
    if node.collect_digits is not None:
        targets.append(node.collect_digits.next)
    return targets


def _reachable(flow: Flow, initial: str) -> set[str]:
    nodes = {node.id: node for node in flow.nodes}
    seen = {initial}
    todo = [initial]
    while todo:
        node = nodes.get(todo.pop())
        for target in _targets(node) if node is not None else []:
            if target in nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _check_node(
    node: FlowNode,
    path: str,
    index: Mapping[str, int],
    tools: set[str],
    known: set[str],
    definition: AgentDefinition,
) -> list[Problem]:
    problems: list[Problem] = []
    special = [k for k in ("collect_digits", "handoff") if getattr(node, k) is not None]
    if node.end:
        special.append("end")
    if len(special) > 1:
        problems.append(Problem(path, f"a node is one kind only, not {' and '.join(special)}"))
    if (node.end or node.handoff is not None) and node.transitions:
        problems.append(Problem(f"{path}.transitions", "an end or handoff node has none"))
    if node.handoff is not None and node.handoff.agent_id == "__self__":
        problems.append(Problem(f"{path}.handoff.agent_id", "reserved name"))
    for j, name in enumerate(node.tools or []):
        if name not in tools:
            problems.append(Problem(f"{path}.tools[{j}]", f"unknown tool {name!r}"))
    twice = _repeats(t.name for t in node.transitions)
    for j, transition in enumerate(node.transitions):
        where = f"{path}.transitions[{j}]"
        if transition.target not in index:
            problems.append(Problem(f"{where}.target", f"unknown node {transition.target!r}"))
        if j in twice:
            problems.append(Problem(f"{where}.name", f"duplicate transition {transition.name!r}"))
        elif transition.name in tools:
            problems.append(Problem(f"{where}.name", f"{transition.name!r} is also a tool name"))
    if node.collect_digits is not None and node.collect_digits.next not in index:
        target = node.collect_digits.next
        problems.append(Problem(f"{path}.collect_digits.next", f"unknown node {target!r}"))
    for attr in ("role", "task"):
        problems += _undeclared(getattr(node, attr), known, f"{path}.{attr}")
    if node.handoff is not None:
        problems += _undeclared(node.handoff.announce, known, f"{path}.handoff.announce")
    for attr in ("pre_actions", "post_actions"):
        for j, action in enumerate(getattr(node, attr)):
            problems += _check_action(action, f"{path}.{attr}[{j}]", tools, known)
    return problems


def _check_action(action: FlowAction, path: str, tools: set[str], known: set[str]) -> list[Problem]:
    problems = _undeclared(action.say, known, f"{path}.say")
    if action.tool is not None and action.tool not in tools:
        problems.append(Problem(f"{path}.tool", f"unknown tool {action.tool!r}"))
    for key, value in action.args.items():
        if isinstance(value, str):
            problems += _undeclared(value, known, f"{path}.args.{key}")
    for key, value in (action.set or {}).items():
        if isinstance(value, str):
            problems += _undeclared(value, known, f"{path}.set.{key}")
    return problems


def check_context(definition: AgentDefinition, context: Mapping[str, str]) -> list[Problem]:
    """Whether a call's context satisfies the agent's variables (missing required, bad types)."""
    problems = []
    for spec in definition.variables:
        value = context.get(spec.name)
        if value is None or value == "":
            if spec.required:
                problems.append(Problem(f"context.{spec.name}", "required variable is missing"))
            continue
        if not value_fits(value, spec.type):
            kind = spec.type.value
            article = "an" if kind[0] in "aeiou" else "a"
            problems.append(Problem(f"context.{spec.name}", f"must be {article} {kind}"))
    return problems


def context_values(definition: AgentDefinition, context: Mapping[str, str]) -> dict[str, str]:
    """Template values of a call: declared defaults, overridden by the call's context."""
    values = {v.name: "" if v.default is None else str(v.default) for v in definition.variables}
    if definition.memory.enabled:  # a new caller (or one forgotten) has no memory
        values.update(dict.fromkeys(MEMORY_VARIABLES, ""))
    values.update(definition.defaults)
    values.update(context)
    return values
