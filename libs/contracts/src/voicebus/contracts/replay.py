"""Replaying a call's caller turns through an agent version, and comparing conversations.

A conversation is compared as a list of :class:`TurnRecord`: turn 0 is what the agent
did before the caller said anything (greeting, first flow node), each later turn is one
caller input (a final transcript or keypad digits) and everything the agent did in
answer: its reply text, the tools it called with their arguments, the flow nodes it
entered, whether it ended the call. The same shape comes from a recorded call's events
(:func:`turns_from_events`) and from a simulation's, so :func:`diff_turns` compares like
with like.

The orchestrator answers ``vb.rpc.orchestrator.agents.simulate`` (:class:`SimulateCall`
→ :class:`SimulationReply`); the edge builds replays and evals on it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Self

from pydantic import Field, model_validator

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, TenantId
from voicebus.contracts.rpc import Reply

AGENTS_SIMULATE: Final = subjects.rpc("orchestrator", "agents", "simulate")
"""Run caller inputs through an agent version, side effects held back: request
:class:`SimulateCall`, reply :class:`SimulationReply`."""

MAX_INPUTS: Final = 200
"""Most caller inputs one simulation runs."""

DiffKind = Literal["caller", "reply", "transitions", "tools", "end"]
DIFF_KINDS: Final[tuple[DiffKind, ...]] = ("caller", "reply", "transitions", "tools", "end")
"""Every kind of difference, in the order a turn is compared. ``caller`` (what was heard
from the caller) differs only when the caller's audio was transcribed again (an audio
replay)."""

_WORDS: Final = re.compile(r"\w+")
_ENDING_REASONS: Final = frozenset({"agent_hangup", "transferred"})
"""``call.ended`` reasons that mean the agent ended the call."""


class CallerInput(Data):
    """One thing the caller did: said a sentence or pressed keys (exactly one of them)."""

    text: str | None = Field(
        default=None, min_length=1, max_length=4096, description="What the caller said.",
        examples=["Where is my order 1234?"],
    )  # fmt: skip
    dtmf: str | None = Field(
        default=None, pattern=r"^[0-9*#A-D]{1,64}$", description="Keys the caller pressed.",
        examples=["1234#"],
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.text is None) == (self.dtmf is None):
            raise ValueError("give exactly one of text or dtmf")
        return self


class ToolStep(Data):
    """A tool the agent called in a turn."""

    name: str = Field(max_length=128, description="Tool name.", examples=["check_order_status"])
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Arguments the LLM chose. May hold personal data."
    )
    ok: bool | None = Field(default=None, description="Whether it succeeded (None: no result).")
    result: Any = Field(default=None, description="Its JSON result.")
    error: str | None = Field(default=None, max_length=2048, description="Error, when not ok.")


class TurnRecord(Data):
    """One caller input and what the agent did in answer (turn 0: before any input)."""

    caller: CallerInput | None = Field(default=None, description="The input (None: turn 0).")
    reply: str = Field(default="", max_length=65536, description="Everything the agent said.")
    tools: list[ToolStep] = Field(default_factory=list, description="Tools called, in order.")
    nodes: list[str] = Field(default_factory=list, description="Flow nodes entered, in order.")
    ended: bool = Field(default=False, description="The agent ended (or transferred) the call.")
    latency_ms: int | None = Field(
        default=None,
        description=(
            "The caller's end of speech (or keypad input) to the agent's first audio, from "
            "the events' times; None: not measured (a text replay) or the agent did not speak."
        ),
    )


class RecordedResult(Data):
    """A tool result to give back instead of calling a tenant's tool (webhook, MCP)."""

    name: str = Field(min_length=1, max_length=128, description="Tool name.")
    arguments: dict[str, Any] | None = Field(
        default=None, description="Only for these exact arguments (None: any arguments)."
    )
    ok: bool = Field(default=True, description="False: the tool fails with ``error``.")
    result: Any = Field(default=None, description="The JSON result given back.")
    error: str | None = Field(default=None, max_length=2048, description="Error, when not ok.")


class SimulateCall(Data):
    """Request body of ``vb.rpc.orchestrator.agents.simulate``."""

    tenant_id: TenantId
    agent_id: str = Field(min_length=1, max_length=128, description="Agent id.",
                          examples=["support"])  # fmt: skip
    version: int | None = Field(default=None, ge=1, description="Version (None: current).")
    context: dict[str, str] = Field(
        default_factory=dict, description="The call's context variables. May hold personal data."
    )
    inputs: list[CallerInput] = Field(
        default_factory=list, max_length=MAX_INPUTS, description="Caller inputs, in order."
    )
    recorded: list[RecordedResult] = Field(
        default_factory=list, max_length=1000,
        description="Results given back for the tenant's tools, which are never called.",
    )  # fmt: skip
    call_id: str | None = Field(
        default=None, max_length=64, description="The recorded call replayed, if any (logs)."
    )


class SimulationReply(Reply):
    """Reply of ``vb.rpc.orchestrator.agents.simulate``."""

    agent_id: str | None = Field(default=None, description="Agent that ran.")
    version: int | None = Field(default=None, description="Its version.")
    turns: list[TurnRecord] = Field(default_factory=list, description="Turn 0, then one a input.")


class Difference(Data):
    """One way a replayed turn differs from the recorded one."""

    turn: int = Field(ge=0, description="Turn index (0: before the first caller input).")
    kind: DiffKind = Field(description="What differs.")
    original: Any = Field(default=None, description="The recorded call's value.")
    replayed: Any = Field(default=None, description="The replay's value.")


class ReplayReport(Data):
    """The recorded call, its replay, and every difference, turn by turn."""

    call_id: str = Field(description="The recorded call.")
    agent_id: str = Field(description="Agent replayed.")
    original_version: int | None = Field(default=None, description="Version the call ran.")
    replayed_version: int | None = Field(default=None, description="Version replayed.")
    original: list[TurnRecord] = Field(default_factory=list, description="Recorded turns.")
    replayed: list[TurnRecord] = Field(default_factory=list, description="Replayed turns.")
    differences: list[Difference] = Field(default_factory=list, description="Turn by turn.")


def _caller_input(name: str, data: Mapping[str, Any]) -> CallerInput | None:
    """The caller input an event is, if it opens a turn (backchannels and empty
    transcripts do not)."""
    if name == "transcript.final":
        text = str(data.get("text", "")).strip()
        return CallerInput(text=text) if text and not data.get("backchannel") else None
    if name == "dtmf.received":
        return CallerInput(dtmf=str(data["digits"]))
    return None


def turns_from_events(events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[TurnRecord]:
    """A conversation's turns from its events (``type``, ``data``), in order.

    Backchannels and empty transcripts are no input; a tool result joins its call by
    ``tool_call_id``.
    """
    turns: list[dict[str, Any]] = [_open(None)]
    by_call: dict[str, dict[str, Any]] = {}
    for kind, data in events:
        name = kind.rsplit(".", 1)[0]
        turn = turns[-1]
        if (caller := _caller_input(name, data)) is not None:
            turns.append(_open(caller))
        elif name == "agent.reply" and data.get("text"):
            turn["reply"].append(str(data["text"]))
        elif name == "tool.called":
            step = {"name": data["name"], "arguments": dict(data.get("arguments") or {})}
            by_call[str(data.get("tool_call_id"))] = step
            turn["tools"].append(step)
        elif name == "tool.result" and (found := by_call.get(str(data.get("tool_call_id")))):
            found.update(ok=data.get("ok"), result=data.get("result"), error=data.get("error"))
        elif name == "flow.node_entered":
            turn["nodes"].append(str(data["node_id"]))
        elif name == "call.ended" and data.get("reason") in _ENDING_REASONS:
            turn["ended"] = True
    return [
        TurnRecord(caller=t["caller"], reply=" ".join(t["reply"]), nodes=t["nodes"],
                   ended=t["ended"], tools=[ToolStep(**s) for s in t["tools"]])
        for t in turns
    ]  # fmt: skip


def turn_latencies(events: Iterable[tuple[str, datetime, Mapping[str, Any]]]) -> list[int | None]:
    """Each turn's latency (as :func:`turns_from_events` splits them; turn 0: None), in ms:
    from the end of the caller's speech to the next ``agent.speech.started``.

    The end of speech is the transcript's ``end_ms`` on the caller's audio timeline, which
    starts at ``call.started`` (the measure the console shows); a keypad turn starts at its
    ``dtmf.received``. None where the agent did not speak.
    """
    latencies: list[int | None] = [None]
    origin: datetime | None = None
    waiting: datetime | None = None
    for kind, time, data in events:
        name = kind.rsplit(".", 1)[0]
        if name == "call.started":
            origin = time
        elif _caller_input(name, data) is not None:
            latencies.append(None)
            end_ms = data.get("end_ms") if name == "transcript.final" else None
            waiting = time
            if origin is not None and isinstance(end_ms, int):
                waiting = origin + timedelta(milliseconds=end_ms)
        elif name == "agent.speech.started" and waiting is not None:
            latencies[-1] = max(0, round((time - waiting).total_seconds() * 1000))
            waiting = None
    return latencies


def timed_turns(events: Sequence[tuple[str, datetime, Mapping[str, Any]]]) -> list[TurnRecord]:
    """:func:`turns_from_events` with each turn's :func:`turn_latencies`."""
    turns = turns_from_events((kind, data) for kind, _time, data in events)
    latencies = turn_latencies(events)
    return [t.model_copy(update={"latency_ms": ms}) for t, ms in zip(turns, latencies, strict=True)]


def percentile(values: Sequence[int], q: float) -> int | None:
    """The ``q`` quantile of ``values`` (nearest rank); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def agent_version_of(events: Iterable[tuple[str, Mapping[str, Any]]]) -> int | None:
    """The agent version a call ran, from its first reply."""
    for kind, data in events:
        if kind.startswith("agent.reply.") and data.get("agent_version"):
            return int(data["agent_version"])
    return None


def _open(caller: CallerInput | None) -> dict[str, Any]:
    return {"caller": caller, "reply": [], "tools": [], "nodes": [], "ended": False}


def caller_inputs(turns: Sequence[TurnRecord]) -> list[CallerInput]:
    """The caller's inputs of a conversation, in order."""
    return [t.caller for t in turns if t.caller is not None]


def recorded_results(turns: Sequence[TurnRecord]) -> list[RecordedResult]:
    """Every tool result of a conversation, to give back when a replay calls the same tool
    with the same arguments."""
    return [
        RecordedResult(name=s.name, arguments=s.arguments, ok=bool(s.ok), result=s.result,
                       error=s.error)
        for t in turns for s in t.tools if s.ok is not None
    ]  # fmt: skip


def normalize(text: str) -> str:
    """Text as compared: spaces collapsed, case folded."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def _heard(caller: CallerInput | None) -> str | None:
    """A caller input as compared: keys, or the words only (the same speech transcribed
    again may differ in punctuation and case)."""
    if caller is None:
        return None
    return caller.dtmf or " ".join(_WORDS.findall((caller.text or "").casefold()))


def _values(turn: TurnRecord | None) -> dict[DiffKind, Any]:
    if turn is None:
        return {"caller": None, "reply": None, "transitions": [], "tools": [], "end": False}
    return {
        "caller": _heard(turn.caller),
        "reply": turn.reply,
        "transitions": list(turn.nodes),
        "tools": [{"name": s.name, "arguments": s.arguments} for s in turn.tools],
        "end": turn.ended,
    }


def diff_turns(original: Sequence[TurnRecord], replayed: Sequence[TurnRecord]) -> list[Difference]:
    """Every difference between two conversations, turn by turn (a missing turn differs in
    every kind it has content in)."""
    out: list[Difference] = []
    for i in range(max(len(original), len(replayed))):
        a = _values(original[i] if i < len(original) else None)
        b = _values(replayed[i] if i < len(replayed) else None)
        for kind in DIFF_KINDS:
            same = (
                normalize(a[kind] or "") == normalize(b[kind] or "")
                if kind == "reply"
                else a[kind] == b[kind]
            )
            if not same:
                out.append(Difference(turn=i, kind=kind, original=a[kind], replayed=b[kind]))
    return out
