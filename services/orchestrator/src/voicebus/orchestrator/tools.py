"""Tools an agent may call: their configuration in agent files and how they run.

Each tool type is one config model with a ``build`` method; the agent file's
``type`` picks the model (a discriminated union), so adding a type touches this
module only. Types:

- ``end_call``: built in; the conversation speaks the goodbye and hangs up.
- ``data``: looks a record up by key in a JSON file next to the agent files
  (``{"1234": {"status": "shipped", ...}, ...}``).
- ``do_not_call``: built in; the callee asked not to be called again. Its result
  carries ``do_not_call: true``, on which the turn publishes ``dnc.requested``
  (campaigns adds the number to the tenant's list); it ends the call by default.

A tool may have a spoken ``reply`` template: the agent then says it, filled
with the result's fields, and the turn ends without another LLM round. The
answer is the data itself (a small model cannot misquote it) and a round trip
to the LLM is saved.

``http`` (webhook) tools come later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from voicebus.engines.base import ToolCall, ToolSpec
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.templating import render, variables

log = logging.getLogger(__name__)

ToolName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


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


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndCallConfig(_Config):
    """``type: end_call``: hang up after the agent's goodbye."""

    type: Literal["end_call"]
    name: ToolName = "end_call"
    description: str = (
        "End the phone call. Call it when the caller says goodbye or has nothing else to ask."
    )

    def build(self, base_dir: Path, field: str, agent_file: Path) -> Tool:
        """The runnable tool."""
        return EndCallTool(ToolSpec(self.name, self.description, {"type": "object"}))


class DataConfig(_Config):
    """``type: data``: look a record up by key in a local JSON file."""

    type: Literal["data"]
    name: ToolName
    description: str = Field(min_length=1)
    file: str = Field(min_length=1, description="JSON object file, relative to the agents dir.")
    key: str = Field(default="id", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    key_description: str = "The record's key."
    key_format: Literal["text", "digits"] = Field(
        default="text", description="digits: keep only the key's digits ('12 34' → '1234')."
    )
    reply: str | None = Field(
        default=None, description="Spoken answer when found: {{key}} and the record's fields."
    )
    reply_not_found: str | None = Field(
        default=None, description="Spoken answer when not found: {{key}} only."
    )

    def _check_replies(self, records: Mapping[str, Any], field: str, agent_file: Path) -> None:
        if self.reply_not_found is not None:
            extra = sorted(variables(self.reply_not_found) - {self.key})
            if extra:
                problem = f"may only use {{{{{self.key}}}}}, not {', '.join(extra)}"
                raise AgentConfigError(agent_file, problem, f"{field}.reply_not_found")
        if self.reply is None:
            return
        wanted = variables(self.reply)
        for key, record in records.items():
            missing = sorted(wanted - {self.key} - set(record))
            if missing:
                problem = f"uses {', '.join(missing)}, absent from record {key!r} of {self.file}"
                raise AgentConfigError(agent_file, problem, f"{field}.reply")

    def build(self, base_dir: Path, field: str, agent_file: Path) -> Tool:
        """The runnable tool, with its data file loaded.

        Raises:
            AgentConfigError: the data file is missing or not an object of objects.
        """
        path = base_dir / self.file
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise AgentConfigError(
                agent_file, f"cannot read {path}: {exc.strerror}", field
            ) from None
        except ValueError as exc:
            raise AgentConfigError(agent_file, f"{path} is not valid JSON: {exc}", field) from None
        if not isinstance(records, dict) or not all(isinstance(v, dict) for v in records.values()):
            raise AgentConfigError(agent_file, f"{path} must be a JSON object of objects", field)
        self._check_replies(records, field, agent_file)
        parameters = {
            "type": "object",
            "properties": {self.key: {"type": "string", "description": self.key_description}},
            "required": [self.key],
        }
        return DataTool(ToolSpec(self.name, self.description, parameters), self, records)


class DoNotCallConfig(_Config):
    """``type: do_not_call``: the callee asked not to be called again."""

    type: Literal["do_not_call"]
    name: ToolName = "do_not_call"
    description: str = (
        "Put the person's number on the do-not-call list. Call it when they ask not to be "
        "called again (for example 'stop calling me')."
    )
    end_call: bool = Field(default=True, description="Hang up after the agent's goodbye.")

    def build(self, base_dir: Path, field: str, agent_file: Path) -> Tool:
        """The runnable tool."""
        spec = ToolSpec(self.name, self.description, {"type": "object"})
        return DoNotCallTool(spec, self.end_call)


ToolConfig = Annotated[EndCallConfig | DataConfig | DoNotCallConfig, Field(discriminator="type")]
"""Any tool entry of an agent file."""


class EndCallTool:
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


class DoNotCallTool:
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


class DataTool:
    """Looks records up in memory (the file is read once, at load)."""

    ends_call = False

    def __init__(self, spec: ToolSpec, config: DataConfig, records: Mapping[str, Any]) -> None:
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

    def message_content(self) -> str:
        """The tool message the LLM reads: the JSON result, or ``{"error": ...}``."""
        payload = self.result if self.ok else {"error": self.error}
        return json.dumps(payload, ensure_ascii=False, default=str)


class Toolbox:
    """An agent's tools, by name.

    Args:
        tools: the built tools.
        timeout_s: longest a tool may run.
    """

    def __init__(self, tools: Sequence[Tool], timeout_s: float = 10.0) -> None:
        self._tools = {tool.spec.name: tool for tool in tools}
        self.timeout_s = timeout_s

    @property
    def specs(self) -> list[ToolSpec]:
        """What the LLM is offered."""
        return [tool.spec for tool in self._tools.values()]

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one call; failures become an outcome with ``ok=False``, never an exception."""
        started = time.monotonic()
        tool = self._tools.get(call.name)
        ok, result, error, ends = False, None, None, False
        if tool is None:
            error = f"unknown tool {call.name!r}"
        else:
            ends = tool.ends_call
            try:
                async with asyncio.timeout(self.timeout_s):
                    result = await tool.run(call.arguments)
                ok = True
            except ToolError as exc:
                error = str(exc)
            except TimeoutError:
                error = f"tool timed out after {self.timeout_s:g} s"
            except Exception:  # a tool's bug must not end the call; the LLM hears "failed"
                log.exception("tool failed", extra={"tool": call.name})
                error = "internal error"
        duration = (time.monotonic() - started) * 1000
        spoken = tool.reply(result) if ok and tool is not None else None
        return ToolOutcome(call, ok, result, error, duration, ends and ok, spoken)
