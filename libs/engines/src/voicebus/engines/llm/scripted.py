"""``scripted``: a deterministic LLM engine driven by pattern rules.

It is what most tests use, and a real engine for IVR-like agents whose answers
are known in advance. Options (from the agent file)::

    rules:
      - match: 'order\\D{0,20}?(?P<order_id>\\d[\\d -]*\\d)'  # searched in the caller's words
        reply: "Let me check order {{order_id}}."              # spoken first (optional)
        tool: check_order_status                                # then this tool is called
        args: {order_id: "{{order_id}}"}
        after_tool: "Order {{order_id}} {{summary}}."           # once the tool answered
        after_tool_failed: "I can't find order {{order_id}}."   # the tool failed / found nothing
        repeat: false                                           # call the tool again after it
      - match: '\\b(bye|goodbye)\\b'
        tool: end_call
    default: "Sorry, I didn't catch that."                      # when no rule matches
    ignore_case: true
    delay_ms: 0                                                 # pause between word deltas

The rules are tried in order against the last user message; the first that
matches answers; when the conversation's last message is a system message (a
flow step just began, with no caller words since), the rules are matched
against that message instead. ``{{name}}`` in ``reply`` and ``args`` takes the rule's named
groups (``{{1}}``... for numbered ones). After a tool result the same rule
(it matches the same user message again) answers with ``after_tool``, whose
``{{name}}`` also takes the result's fields (``{{a.b}}`` for nested ones, ``{{a.0.b}}``
for an item of a list). A
result counts as failed when it is not JSON, or is an object with an ``error``
key or ``found: false``. A variable with no value renders empty.

Replies stream as word deltas (``"Your"``, ``" order"``...), as a real model's
tokens would, so sentence chunking downstream is exercised.

Register with :func:`register` (nothing is registered at import).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voicebus.engines.base import (
    LLM,
    NO_CONTEXT,
    ChatMessage,
    EngineContext,
    EngineError,
    LLMChunk,
    Options,
    TextDelta,
    ToolCall,
    ToolSpec,
)

NAME: Final = "scripted"
DEFAULT_REPLY: Final = "Sorry, I didn't catch that. Could you say it again?"

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_WORD = re.compile(r"\s*\S+")


class ScriptedRule(BaseModel):
    """One pattern and what the engine does when it matches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match: str = Field(min_length=1, description="Regular expression searched in the message.")
    reply: str = Field(default="", description="Text spoken when the rule matches.")
    tool: str | None = Field(default=None, min_length=1, description="Tool to call after reply.")
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments.")
    after_tool: str = Field(default="", description="Reply once the tool answered.")
    after_tool_failed: str | None = Field(
        default=None, description="Reply when the tool failed; after_tool when unset."
    )
    repeat: bool = Field(
        default=False, description="Call the tool again after its result while tools are offered."
    )

    @field_validator("match")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class ScriptedOptions(BaseModel):
    """Options of the ``scripted`` engine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[ScriptedRule] = Field(default_factory=list)
    default: str = DEFAULT_REPLY
    ignore_case: bool = True
    delay_ms: float = Field(default=0.0, ge=0, le=5000)


def render(template: str, values: Mapping[str, Any]) -> str:
    """Replace each ``{{name}}`` (or ``{{a.b}}``, ``{{a.0}}``) with its value; unknown names
    render empty."""

    def lookup(match: re.Match[str]) -> str:
        value: Any = values
        for part in match.group(1).split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                return ""
        return "" if value is None else str(value)

    return _VARIABLE.sub(lookup, template)


def _render_args(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, Mapping):
        return {key: _render_args(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_args(item, values) for item in value]
    return value


def _groups(match: re.Match[str]) -> dict[str, str]:
    values = {str(i): group or "" for i, group in enumerate(match.groups(), start=1)}
    values["0"] = match.group(0)
    values.update({name: group or "" for name, group in match.groupdict().items()})
    return values


def _tool_outcome(content: str) -> tuple[bool, dict[str, Any]]:
    """(ok, fields) of a tool message's content."""
    try:
        result = json.loads(content)
    except ValueError:
        return False, {"result": content}
    if isinstance(result, dict):
        failed = "error" in result or result.get("found") is False
        return not failed, result
    return True, {"result": result}


class ScriptedLLM:
    """The ``scripted`` engine: rules in, deterministic streamed replies and tool calls out.

    Args:
        options: validated options.
    """

    name = NAME

    def __init__(self, options: ScriptedOptions) -> None:
        self.options = options
        flags = re.IGNORECASE if options.ignore_case else 0
        self._patterns = [re.compile(rule.match, flags) for rule in options.rules]

    def _rule_for(self, text: str) -> tuple[ScriptedRule, dict[str, str]] | None:
        for rule, pattern in zip(self.options.rules, self._patterns, strict=True):
            found = pattern.search(text)
            if found is not None:
                return rule, _groups(found)
        return None

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Answer the last user message (or the tool result that follows it)."""
        last = messages[-1] if messages else None
        if last is not None and last.role == "system" and len(messages) > 1:
            user: ChatMessage | None = last  # a flow step began: answer its task
        else:
            user = next((m for m in reversed(messages) if m.role == "user"), None)
        if user is None:
            return
        matched = self._rule_for(user.content)
        if last is not None and last.role == "tool":
            if matched is None:
                return
            rule, groups = matched
            if rule.repeat and rule.tool is not None and tools:
                yield self._call(rule, groups, messages)
                return
            ok, fields = _tool_outcome(last.content)
            template = rule.after_tool if ok else (rule.after_tool_failed or rule.after_tool)
            async for delta in self._words(render(template, {**groups, **fields})):
                yield delta
            return
        if matched is None:
            async for delta in self._words(self.options.default):
                yield delta
            return
        rule, groups = matched
        async for delta in self._words(render(rule.reply, groups)):
            yield delta
        if rule.tool is not None:
            yield self._call(rule, groups, messages)

    @staticmethod
    def _call(
        rule: ScriptedRule, groups: dict[str, str], messages: Sequence[ChatMessage]
    ) -> ToolCall:
        assert rule.tool is not None
        calls = sum(len(m.tool_calls) for m in messages if m.role == "assistant")
        return ToolCall(
            id=f"call_{calls + 1}", name=rule.tool, arguments=_render_args(rule.args, groups)
        )

    async def _words(self, text: str) -> AsyncIterator[TextDelta]:
        delay = self.options.delay_ms / 1000
        for word in _WORD.findall(text):
            # Always yield to the loop: a cancelled generation stops between words.
            await asyncio.sleep(delay)
            yield TextDelta(word)


def create(options: Options, context: EngineContext = NO_CONTEXT) -> ScriptedLLM:
    """Build the engine from an agent's options.

    Raises:
        EngineError: an option is unknown or invalid (the message names it).
    """
    try:
        parsed = ScriptedOptions.model_validate(dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
            for err in exc.errors()
        )
        raise EngineError(f"{NAME}: invalid options: {problems}") from None
    return ScriptedLLM(parsed)


def register() -> None:
    """Make the engine available as ``LLM.create("scripted", options)``."""
    LLM.register(NAME, create)
