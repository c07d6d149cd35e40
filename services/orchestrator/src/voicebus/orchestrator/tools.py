"""Tools an agent may call: built from its ``tools:`` entries, and how they run.

Built-ins (configured in :mod:`voicebus.contracts.agents.tools`):

- ``end_call``: the conversation speaks the goodbye and hangs up.
- ``data``: looks a record up by key in a JSON file of the operator's agents folder.
- ``do_not_call``: the callee asked not to be called again; the turn publishes
  ``dnc.requested`` (it ends the call by default).
- ``transfer_call`` / ``send_dtmf``: call control; the LLM picks a destination by
  name (never a raw number) or keys to press, and the turn sends the command.

Webhook tools (:mod:`.webhook`), MCP tools (:mod:`.mcp_tools`) and a flow's
transition functions (:mod:`.flow`) join the same :class:`Toolbox`.

A tool may have a spoken ``reply`` template: the agent then says it, filled
with the result's fields, and the turn ends without another LLM round.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voicebus.contracts.agents import (
    AgentTool,
    DataTool,
    DoNotCallTool,
    EndCallTool,
    SendDtmfTool,
    TransferCallTool,
)
from voicebus.contracts.commands import TransferData, TransferMode
from voicebus.engines.base import ToolCall, ToolSpec
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.templating import render, variables

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool could not do its job; the message goes back to the LLM."""


class Tool(Protocol):
    """A tool ready to run."""

    spec: ToolSpec
    ends_call: bool

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """Do the work; return a JSON-serializable result.

        Raises:
            ToolError: the arguments are wrong or the work failed.
        """
        ...

    def reply(self, result: Any) -> str | None:
        """What the agent says about ``result`` itself, or None to let the LLM answer."""
        ...


@dataclass(slots=True)
class CallTools:
    """The tenant-owned tools a call got, and problems to report (no personal data)."""

    tools: list[Tool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    connections: list[Closable] = field(default_factory=list)
    """Held for the call (MCP sessions): closed when the call's conversation closes."""


class Closable(Protocol):
    """Something a call holds open."""

    async def close(self) -> None:
        """Release it."""
        ...


@dataclass(frozen=True, slots=True)
class CallAction:
    """What a call-control tool asks of the call; the turn carries it out.

    Attributes:
        result: what the LLM is told.
        transfer: transfer the caller (``Transfer`` data), if set.
        dtmf: keys to press, if set.
        move: a flow transition (the transition's name and its arguments), if set.
    """

    result: Any
    transfer: TransferData | None = None
    dtmf: str | None = None
    move: tuple[str, dict[str, Any]] | None = None


def _check_replies(
    config: DataTool, records: Mapping[str, Any], field: str, agent_file: Path
) -> None:
    if config.reply_not_found is not None:
        extra = sorted(variables(config.reply_not_found) - {config.key})
        if extra:
            problem = f"may only use {{{{{config.key}}}}}, not {', '.join(extra)}"
            raise AgentConfigError(agent_file, problem, f"{field}.reply_not_found")
    if config.reply is None:
        return
    wanted = variables(config.reply)
    for key, record in records.items():
        missing = sorted(wanted - {config.key} - set(record))
        if missing:
            problem = f"uses {', '.join(missing)}, absent from record {key!r} of {config.file}"
            raise AgentConfigError(agent_file, problem, f"{field}.reply")


def _build_data(config: DataTool, base_dir: Path, field: str, agent_file: Path) -> Tool:
    path = base_dir / config.file
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(
            agent_file, f"cannot read {config.file}: {exc.strerror}", field
        ) from None
    except ValueError as exc:
        raise AgentConfigError(
            agent_file, f"{config.file} is not valid JSON: {exc}", field
        ) from None
    if not isinstance(records, dict) or not all(isinstance(v, dict) for v in records.values()):
        raise AgentConfigError(agent_file, f"{config.file} must be a JSON object of objects", field)
    _check_replies(config, records, field, agent_file)
    parameters = {
        "type": "object",
        "properties": {config.key: {"type": "string", "description": config.key_description}},
        "required": [config.key],
    }
    return DataLookup(ToolSpec(config.name, config.description, parameters), config, records)


def build_tool(config: AgentTool, base_dir: Path, field: str, agent_file: Path) -> Tool | None:
    """The runnable built-in tool of an agent's ``tools:`` entry (None: a webhook reference,
    resolved for each call from the tenant's tools).

    Raises:
        AgentConfigError: a data file is missing or does not match its replies.
    """
    match config:
        case EndCallTool():
            return EndCall(ToolSpec(config.name, config.description, {"type": "object"}))
        case DoNotCallTool():
            spec = ToolSpec(config.name, config.description, {"type": "object"})
            return DoNotCall(spec, config.end_call)
        case DataTool():
            return _build_data(config, base_dir, field, agent_file)
        case TransferCallTool():
            return TransferCall(config)
        case SendDtmfTool():
            return SendDtmfKeys(config)
        case _:
            return None


class EndCall:
    """Ends the call: the conversation acts on ``ends_call``."""

    ends_call = True

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """Acknowledge; the hang-up itself belongs to the conversation."""
        return {"ok": True, "status": "ending call"}

    def reply(self, result: Any) -> str | None:
        """None: the goodbye is the agent's own line."""
        return None


class DoNotCall:
    """Marks the request; the turn publishes ``dnc.requested`` for the call."""

    def __init__(self, spec: ToolSpec, ends_call: bool) -> None:
        self.spec = spec
        self.ends_call = ends_call

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """Acknowledge; the request itself is published by the turn, which knows the call."""
        return {"ok": True, "do_not_call": True, "status": "this number will not be called again"}

    def reply(self, result: Any) -> str | None:
        """None: the agent confirms in its own words."""
        return None


class TransferCall:
    """Transfers the caller to one of the configured destinations."""

    ends_call = False

    def __init__(self, config: TransferCallTool) -> None:
        self._config = config
        names = [d.name for d in config.destinations]
        described = "; ".join(f"{d.name}: {d.description}" if d.description else d.name
                              for d in config.destinations)  # fmt: skip
        properties: dict[str, Any] = {
            "destination": {"type": "string", "enum": names, "description": described},
        }
        required = ["destination"]
        if config.mode is TransferMode.WARM and config.announcement is None:
            properties["summary"] = {
                "type": "string", "description": "One sentence for the person taking the call.",
            }  # fmt: skip
        self.spec = ToolSpec(
            config.name, config.description,
            {"type": "object", "properties": properties, "required": required},
        )  # fmt: skip

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """A :class:`CallAction` transferring to the named destination."""
        name = str(arguments.get("destination", "")).strip()
        target = next((d for d in self._config.destinations if d.name == name), None)
        if target is None:
            known = ", ".join(d.name for d in self._config.destinations)
            raise ToolError(f"unknown destination {name!r}; choose one of {known}")
        announcement = None
        if self._config.mode is TransferMode.WARM:
            announcement = self._config.announcement or str(arguments.get("summary") or "")[:2048]
        data = TransferData(to_number=target.number, mode=self._config.mode,
                            announcement=announcement or None)  # fmt: skip
        return CallAction({"ok": True, "transferring_to": name}, transfer=data)

    def reply(self, result: Any) -> str | None:
        """The configured hold line."""
        return self._config.say or None


class SendDtmfKeys:
    """Presses keypad keys in the call."""

    ends_call = False

    def __init__(self, config: SendDtmfTool) -> None:
        parameters = {
            "type": "object",
            "properties": {"digits": {"type": "string", "description": "Keys: 0-9, * and #."}},
            "required": ["digits"],
        }
        self.spec = ToolSpec(config.name, config.description, parameters)

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """A :class:`CallAction` pressing the keys."""
        digits = re.sub(r"\s", "", str(arguments.get("digits", "")))
        if not re.fullmatch(r"[0-9*#A-D]{1,32}", digits):
            raise ToolError("digits must be 1 to 32 of 0-9, *, # and A-D")
        return CallAction({"ok": True, "pressed": digits}, dtmf=digits)

    def reply(self, result: Any) -> str | None:
        """None: the LLM goes on."""
        return None


class DataLookup:
    """Looks records up in memory (the file is read once, at load)."""

    ends_call = False

    def __init__(self, spec: ToolSpec, config: DataTool, records: Mapping[str, Any]) -> None:
        self.spec = spec
        self._config = config
        self._records = {self._normalize(k): v for k, v in records.items()}

    def _normalize(self, key: Any) -> str:
        text = str(key).strip()
        return re.sub(r"\D", "", text) if self._config.key_format == "digits" else text

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """``{"found": true, <key>: ..., **record}`` or ``{"found": false, <key>: ...}``."""
        value = arguments.get(self._config.key)
        if value is None or isinstance(value, dict | list) or str(value).strip() == "":
            raise ToolError(f"argument {self._config.key!r} is required")
        key = self._normalize(value)
        if not key:
            raise ToolError(f"argument {self._config.key!r} has no {self._config.key_format}")
        record = self._records.get(key)
        if record is None:
            return {"found": False, self._config.key: key}
        return {"found": True, self._config.key: key, **record}

    def reply(self, result: Any) -> str | None:
        """The configured answer for a found / missing record (None when not configured)."""
        template = self._config.reply if result.get("found") else self._config.reply_not_found
        if template is None:
            return None
        return render(template, {k: "" if v is None else str(v) for k, v in result.items()})


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What running one tool call gave."""

    call: ToolCall
    ok: bool
    result: Any
    error: str | None
    duration_ms: float
    ends_call: bool
    spoken: str | None = None
    """The tool's own answer to speak (its ``reply`` template), if any."""
    action: CallAction | None = None
    """What a call-control tool or a flow transition asks of the call."""
    kind: str = "unknown"
    """The kind of tool (a bounded metrics label); ``unknown`` when the call named none."""

    def message_content(self) -> str:
        """The tool message the LLM reads: the JSON result, or ``{"error": ...}``."""
        payload = self.result if self.ok else {"error": self.error}
        return json.dumps(payload, ensure_ascii=False, default=str)


def missing_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> list[str]:
    """Required parameters the LLM left out (or left empty)."""
    required = spec.parameters.get("required", [])
    return [name for name in required if arguments.get(name) in (None, "")]


class Toolbox:
    """The tools of one call, by name; a flow node offers a subset of them.

    Args:
        tools: the built tools.
        timeout_s: longest a tool may run (a tool's own ``budget_s`` may raise it).
    """

    def __init__(self, tools: Sequence[Tool], timeout_s: float = 10.0) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}
        self._offered: list[str] | None = None
        self._extra: dict[str, Tool] = {}
        self.timeout_s = timeout_s

    def add(self, tools: Sequence[Tool]) -> None:
        """Add tools found later (a tenant's webhook tools, an MCP server's)."""
        for tool in tools:
            self._tools.setdefault(tool.spec.name, tool)

    def offer(self, names: Sequence[str] | None, extra: Sequence[Tool] = ()) -> None:
        """Offer only ``names`` (None: every tool) plus ``extra`` (a flow node's transitions)."""
        self._offered = None if names is None else list(names)
        self._extra = {tool.spec.name: tool for tool in extra}

    @property
    def names(self) -> list[str]:
        """Every tool this call has (offered or not)."""
        return list(self._tools)

    @property
    def specs(self) -> list[ToolSpec]:
        """What the LLM is offered now."""
        names = self._tools if self._offered is None else self._offered
        tools = [self._tools[n] for n in names if n in self._tools]
        return [tool.spec for tool in (*tools, *self._extra.values())]

    def get(self, name: str) -> Tool | None:
        """A tool of the call by name (transitions included), offered or not."""
        return self._extra.get(name) or self._tools.get(name)

    async def run(self, call: ToolCall, *, offered_only: bool = True) -> ToolOutcome:
        """Run one call; failures become an outcome with ``ok=False``, never an exception."""
        started = time.monotonic()
        offered = {spec.name for spec in self.specs}
        tool = self.get(call.name) if (call.name in offered or not offered_only) else None
        ok, result, error, ends, action = False, None, None, False, None
        if tool is None:
            error = f"unknown tool {call.name!r}"
        elif missing := missing_arguments(tool.spec, call.arguments):
            error = f"missing argument(s): {', '.join(missing)}"
        else:
            ends = tool.ends_call
            budget = max(self.timeout_s, float(getattr(tool, "budget_s", 0.0) or 0.0))
            try:
                async with asyncio.timeout(budget):
                    result = await tool.run(call.arguments)
                ok = True
            except ToolError as exc:
                error = str(exc)
            except TimeoutError:
                error = f"timeout: the tool took longer than {budget:g} s"
            except Exception:  # a tool's bug must not end the call; the LLM hears "failed"
                log.exception("tool failed", extra={"tool": call.name})
                error = "internal error"
        if isinstance(result, CallAction):
            action, result = result, result.result
        duration = (time.monotonic() - started) * 1000
        spoken = tool.reply(result) if ok and tool is not None else None
        kind = tool_kind(tool) if tool is not None else "unknown"
        return ToolOutcome(call, ok, result, error, duration, ends and ok, spoken, action, kind)


def tool_kind(tool: Tool) -> str:
    """A bounded name for the kind of ``tool``: its class in snake case, without ``Tool``
    (``DataLookup`` → ``data_lookup``, ``McpTool`` → ``mcp``).

    Tools are classes of this code, so the set is fixed by the code, never by an agent.
    """
    name = type(tool).__name__.strip("_").removesuffix("Tool")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "tool"
