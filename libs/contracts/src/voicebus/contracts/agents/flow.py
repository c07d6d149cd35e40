"""Flows: an agent's conversation as a small state machine of nodes.

A node gives the LLM a role (optional; the agent's prompt otherwise) and a task,
offers some of the agent's tools plus its **transitions** (functions the LLM
calls to move on; their arguments are captured into the flow's variables), and
runs **actions** on entry and exit (say a line, call a tool, set a variable).
Special nodes: **collect digits** (keypad input fills a variable, then the flow
moves on), **handoff** (another agent takes over the call with the variables
collected) and **end** (the agent says its goodbye and hangs up). Each
transition says what happens to the conversation history: keep it, reset it,
or reset it to a summary.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import Field, field_validator, model_validator

from voicebus.contracts.agents.tools import Definition, ToolName, check_parameters_schema

NodeId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Node id.", examples=["verify"]),
]
VariableName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="Variable name.",
          examples=["account_number"]),
]  # fmt: skip
Scalar = str | int | float | bool
MAX_COORDINATE: Final = 100_000.0
"""Bound of a node's canvas coordinates, either way."""


class ContextStrategy(StrEnum):
    """What a transition does to the conversation history the LLM sees."""

    KEEP = "keep"
    RESET = "reset"
    RESET_WITH_SUMMARY = "reset_with_summary"


class FlowAction(Definition):
    """One step run when a node is entered (pre-action) or left (post-action).

    Exactly one of ``say``, ``tool`` and ``set``.
    """

    say: str | None = Field(
        default=None, max_length=2048, description="A line the agent says ({{variables}})."
    )
    tool: ToolName | None = Field(default=None, description="An agent tool to call.")
    args: dict[str, Any] = Field(
        default_factory=dict, description="The tool's arguments ({{variables}} in strings)."
    )
    result_variable: VariableName | None = Field(
        default=None, description="Store the tool's result in this variable."
    )
    set: dict[VariableName, Scalar] | None = Field(
        default=None, description="Variables to set (string values may use {{variables}})."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> FlowAction:
        kinds = [k for k in ("say", "tool", "set") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("an action has exactly one of say, tool, set")
        if self.tool is None and (self.args or self.result_variable):
            raise ValueError("args and result_variable belong to a tool action")
        return self


class Transition(Definition):
    """A function the LLM calls to move the flow to another node."""

    name: ToolName
    description: str = Field(min_length=1, max_length=1024, description="When to call it.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of its arguments; each argument becomes a flow variable.",
    )
    target: NodeId = Field(description="The node it moves to.")
    context: ContextStrategy = Field(
        default=ContextStrategy.KEEP, description="What happens to the history."
    )
    summary_prompt: str = Field(
        default="Summarize the conversation so far in three short sentences, keeping facts.",
        max_length=2048,
        description="reset_with_summary: what the LLM is asked to summarize with.",
    )

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_parameters_schema(value)


class CollectDigits(Definition):
    """Keypad input fills a variable; then the flow moves to ``next``."""

    variable: VariableName = Field(description="Variable the digits fill.")
    min_length: int = Field(default=1, ge=1, le=64, description="Fewest digits accepted.")
    max_length: int = Field(default=16, ge=1, le=64, description="Input ends at this many.")
    terminator: str | None = Field(
        default="#", pattern=r"^[#*]$", description="Key that ends the input (not kept)."
    )
    inter_digit_timeout_s: float = Field(
        default=5.0, ge=1.0, le=30.0, description="Silence after a digit that ends the input."
    )
    next: NodeId = Field(description="Node entered once the digits are in.")
    retry_say: str = Field(
        default="Sorry, I didn't get that. Please enter it again.",
        max_length=512,
        description="Said when too few digits came.",
    )
    sensitive: bool = Field(
        default=False,
        description="The digits are secret (a PIN, a card number): the flow and its tools "
        "use them, but every event the orchestrator publishes for the call shows them as "
        "'*'.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> CollectDigits:
        if self.min_length > self.max_length:
            raise ValueError("min_length is larger than max_length")
        return self


class Handoff(Definition):
    """Another agent of the tenant takes the call over, with the variables collected."""

    agent_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,128}$", description="The agent taking over.",
        examples=["billing"],
    )  # fmt: skip
    announce: str | None = Field(
        default=None, max_length=1024, description="Said before the new agent takes over."
    )
    context: ContextStrategy = Field(
        default=ContextStrategy.RESET_WITH_SUMMARY,
        description="What the new agent sees of the conversation so far.",
    )


class NodePosition(Definition):
    """Where a node sits on the console's canvas: layout only, never read when calls run."""

    x: float = Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, description="Canvas x, in pixels.",
                     examples=[360.0])  # fmt: skip
    y: float = Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, description="Canvas y, in pixels.",
                     examples=[40.0])  # fmt: skip


class FlowNode(Definition):
    """One step of a flow."""

    id: NodeId
    role: str | None = Field(
        default=None, description="System prompt while here ({{variables}}); agent's if unset."
    )
    task: str = Field(default="", description="What the LLM should do here ({{variables}}).")
    tools: list[ToolName] | None = Field(
        default=None, description="Agent tools offered here; every agent tool when unset."
    )
    transitions: list[Transition] = Field(default_factory=list, max_length=32)
    pre_actions: list[FlowAction] = Field(default_factory=list, max_length=16)
    post_actions: list[FlowAction] = Field(default_factory=list, max_length=16)
    respond_immediately: bool = Field(
        default=True,
        description="Run the LLM as soon as the node is entered (else wait for the caller).",
    )
    collect_digits: CollectDigits | None = Field(default=None, description="A keypad node.")
    handoff: Handoff | None = Field(default=None, description="A handoff node.")
    end: bool = Field(default=False, description="A terminal node: goodbye, then hang up.")
    llm_options: dict[str, Any] | None = Field(
        default=None,
        description="Merged over the agent's llm.options while here (model, temperature...).",
        examples=[{"temperature": 0.0, "max_tokens": 60}],
    )
    # Left out of dumps while unset, so a definition saved before positions existed keeps
    # its canonical JSON (and digest): re-importing it makes no new version.
    position: NodePosition | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Where the console's canvas shows the node (layout only: the orchestrator "
        "ignores it). Unset: the canvas lays the node out from the graph.",
    )


class Flow(Definition):
    """An agent's flow: its nodes and where it starts."""

    id: str = Field(
        default="main", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Flow id (in events)."
    )
    initial: NodeId | None = Field(default=None, description="The node a call starts in.")
    nodes: list[FlowNode] = Field(min_length=1, max_length=64)
