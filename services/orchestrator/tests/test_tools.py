"""Tools: the data lookup and the toolbox's handling of failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from voicebus.contracts.agents import DataTool, EndCallTool
from voicebus.engines.base import ToolCall, ToolSpec
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.tools import Tool, Toolbox, ToolError, build_tool

pytestmark = pytest.mark.unit


def _data_tool(tmp_path: Path, key_format: str = "digits", **replies: str) -> Tool:
    (tmp_path / "orders.json").write_text(
        json.dumps({"1234": {"status": "shipped"}, " 77 ": {"status": "lost"}})
    )
    config = DataTool.model_validate(
        {"type": "data", "name": "lookup", "description": "d", "file": "orders.json",
         "key": "order_id", "key_format": key_format, **replies}
    )  # fmt: skip
    tool = build_tool(config, tmp_path, "tools[0]", tmp_path / "agent.yaml")
    assert tool is not None
    return tool


async def test_the_data_tool_finds_records_by_normalized_key(tmp_path: Path) -> None:
    tool = _data_tool(tmp_path)
    assert await tool.run({"order_id": "12-34"}) == {
        "found": True,
        "order_id": "1234",
        "status": "shipped",
    }
    assert await tool.run({"order_id": 77}) == {"found": True, "order_id": "77", "status": "lost"}
    assert await tool.run({"order_id": "999"}) == {"found": False, "order_id": "999"}
    with pytest.raises(ToolError, match="'order_id' is required"):
        await tool.run({})
    with pytest.raises(ToolError, match="'order_id' has no digits"):
        await tool.run({"order_id": "twelve"})
    text_tool = _data_tool(tmp_path, key_format="text")
    assert (await text_tool.run({"order_id": "12-34"}))["found"] is False


class _Slow:
    spec = ToolSpec("slow", "sleeps")
    ends_call = False

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        await asyncio.sleep(10)

    def reply(self, result: Any) -> str | None:
        return None


class _Broken:
    spec = ToolSpec("broken", "raises")
    ends_call = False

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        raise KeyError("bug")

    def reply(self, result: Any) -> str | None:
        return "never asked"


async def test_the_toolbox_turns_every_failure_into_an_outcome(tmp_path: Path) -> None:
    end_call = build_tool(EndCallTool(type="end_call"), tmp_path, "tools[0]", tmp_path / "a.yaml")
    assert end_call is not None
    box = Toolbox([_data_tool(tmp_path), end_call, _Slow(), _Broken()], timeout_s=0.1)
    assert [s.name for s in box.specs] == ["lookup", "end_call", "slow", "broken"]

    found = await box.run(ToolCall("1", "lookup", {"order_id": "1234"}))
    assert found.ok
    assert not found.ends_call
    assert json.loads(found.message_content())["status"] == "shipped"

    ended = await box.run(ToolCall("2", "end_call", {}))
    assert ended.ok
    assert ended.ends_call

    for name, error in [
        ("nope", "unknown tool 'nope'"),
        ("slow", "timeout: the tool took longer than 0.1 s"),
        ("broken", "internal error"),
    ]:
        outcome = await box.run(ToolCall("3", name, {}))
        assert not outcome.ok
        assert outcome.error == error
        assert json.loads(outcome.message_content()) == {"error": error}
        assert outcome.duration_ms >= 0

    bad_args = await box.run(ToolCall("4", "lookup", {"order_id": ""}))
    assert not bad_args.ok
    assert bad_args.error == "missing argument(s): order_id"


async def test_a_reply_template_makes_the_tool_answer_itself(tmp_path: Path) -> None:
    tool = _data_tool(
        tmp_path,
        reply="Order {{order_id}} is {{ status }}.",
        reply_not_found="No order {{order_id}}.",
    )
    box = Toolbox([tool])
    found = await box.run(ToolCall("1", "lookup", {"order_id": "1234"}))
    assert found.spoken == "Order 1234 is shipped."
    missing = await box.run(ToolCall("2", "lookup", {"order_id": "5"}))
    assert missing.spoken == "No order 5."
    failed = await box.run(ToolCall("3", "lookup", {}))
    assert failed.spoken is None
    plain = await Toolbox([_data_tool(tmp_path)]).run(ToolCall("4", "lookup", {"order_id": "1"}))
    assert plain.spoken is None


@pytest.mark.parametrize(
    ("replies", "field", "problem"),
    [
        ({"reply": "{{order_id}} by {{carrier}}"}, "tools[0].reply", "uses carrier, absent from"),
        ({"reply_not_found": "{{status}}"}, "tools[0].reply_not_found", "may only use"),
    ],
)
def test_reply_templates_are_checked_against_every_record_at_load(
    tmp_path: Path, replies: dict[str, str], field: str, problem: str
) -> None:
    with pytest.raises(AgentConfigError, match=problem) as caught:
        _data_tool(tmp_path, **replies)
    assert caught.value.field == field
