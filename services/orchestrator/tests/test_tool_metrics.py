"""Tool metrics: bounded labels, whatever name the LLM asks for."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from voicebus.contracts.agents import EndCallTool
from voicebus.engines.base import ToolCall
from voicebus.orchestrator import tool_events
from voicebus.orchestrator.tools import Toolbox, build_tool

pytestmark = pytest.mark.unit


class _Outbox:
    source = "orchestrator/test"

    def __init__(self) -> None:
        self.published: list[object] = []

    async def publish(self, event: object) -> None:
        self.published.append(event)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_tool_calls_are_labelled_by_kind_and_unknown_names_collapse(tmp_path: Path) -> None:
    end_call = build_tool(EndCallTool(type="end_call"), tmp_path, "tools[0]", tmp_path / "a.yaml")
    assert end_call is not None
    box = Toolbox([end_call])
    ids = tool_events.CallIds("acme", "c1")
    invented = "made_up_by_the_llm_" + "x" * 20
    ok_before = _value("voicebus_orchestrator_tool_seconds_count", kind="end_call", result="ok")
    unknown_before = _value(
        "voicebus_orchestrator_tool_calls_total", tool="unknown", result="error"
    )

    ended = await box.run(ToolCall("1", "end_call", {}))
    missing = await box.run(ToolCall("2", invented, {}))
    outbox = _Outbox()
    await tool_events.finished(outbox, ids, ended)  # type: ignore[arg-type]  # a fake outbox
    await tool_events.finished(outbox, ids, missing)  # type: ignore[arg-type]

    assert ended.kind == "end_call"
    assert missing.kind == "unknown"
    assert (
        _value("voicebus_orchestrator_tool_seconds_count", kind="end_call", result="ok")
        == ok_before + 1
    )
    calls = "voicebus_orchestrator_tool_calls_total"
    assert _value(calls, tool="unknown", result="error") == unknown_before + 1
    exposed = {s.labels.get("tool") for m in REGISTRY.collect() for s in m.samples}
    assert invented not in exposed
