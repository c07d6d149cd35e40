"""The tool loop and call control with fakes: at most three LLM rounds a turn and a tool-less
last one, the slow-tool filler, transfer and keys, keypad input, idle reprompts, time limit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from orchestrator_fakes import (
    Recorder,
    eventually,
    keys,
    make_conversation,
    of,
    says,
    stopped,
    transcript,
)

from voicebus.contracts.agents import Hygiene, parse_definition
from voicebus.contracts.commands import HangUp, SendDtmf, Transfer, TransferMode
from voicebus.contracts.events import AgentReply, CallIdle, EndReason, ToolCalled, ToolResult
from voicebus.engines.base import ToolSpec
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent, compile_agent
from voicebus.orchestrator.conversation import CallServices, ConversationSettings
from voicebus.orchestrator.tools import CallTools
from voicebus.orchestrator.turn import TurnLimits

pytestmark = pytest.mark.unit


class SlowTool:
    """A tenant tool that takes its time (a slow business server)."""

    ends_call = False

    def __init__(self, delay_s: float) -> None:
        self.spec = ToolSpec("check_status", "Check the status.", {"type": "object"})
        self.delay_s = delay_s
        self.calls = 0

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return {"status": "ready"}

    def reply(self, result: Any) -> str | None:
        return None


def agent_with(tmp_path: Path, rules: list[dict[str, Any]], **extra: Any) -> Agent:
    raw = {"name": "x", "system_prompt": "p", "llm": {"engine": "scripted",
           "options": {"rules": rules, "default": "Okay."}}, **extra}  # fmt: skip
    return compile_agent("x", 1, "", parse_definition(raw), tmp_path, {})


def services_with(tool: SlowTool) -> CallServices:
    async def tools(agent: Agent, tenant_id: str, call_id: str) -> CallTools:
        return CallTools(tools=[tool])

    return CallServices(tools=tools)


async def test_three_rounds_at_most_and_the_last_one_is_offered_no_tools(tmp_path: Path) -> None:
    rule = {"match": "status", "reply": "Checking.", "tool": "check_status", "repeat": True,
            "after_tool": "It is {{status}}."}  # fmt: skip
    agent = agent_with(tmp_path, [rule])
    tool = SlowTool(0.0)
    engine = Recorder(scripted.create({"rules": [rule]}))
    conv, outbox, _ = make_conversation(agent, engine, services=services_with(tool))
    await conv.start()
    await conv.handle(transcript("what is the status?"), seq=2)
    await eventually(lambda: bool(of(outbox, AgentReply)))
    await conv.idle()
    assert tool.calls == 2
    assert len(of(outbox, ToolCalled)) == len(of(outbox, ToolResult)) == 2
    assert [len(tools) for tools in engine.tools] == [1, 1, 0]
    assert of(outbox, AgentReply)[-1].data.text == "Checking. It is ready."


async def test_a_slow_tool_gets_a_filler_line_that_counts_as_heard(tmp_path: Path) -> None:
    rule = {"match": "status", "tool": "check_status", "after_tool": "It is {{status}}."}
    agent = agent_with(tmp_path, [rule])
    settings = ConversationSettings(limits=TurnLimits(slow_tool_s=0.05))
    conv, outbox, _ = make_conversation(
        agent, scripted.create({"rules": [rule]}), services=services_with(SlowTool(0.3)),
        settings=settings,
    )  # fmt: skip
    await conv.start()
    await conv.handle(transcript("status please"), seq=2)
    await eventually(lambda: bool(of(outbox, AgentReply)))
    await conv.idle()
    assert [s.data.text for s in says(outbox) if s.data.text] == [
        "One moment while I check that.", "It is ready."]  # fmt: skip
    roles = [(m.role, m.content) for m in conv.session.history[2:]]
    assert roles[0][0] == "assistant"  # the tool call
    assert roles[1][0] == "tool"  # its result right after it
    assert roles[2] == ("assistant", "One moment while I check that.")


async def test_transfer_waits_for_the_hold_line_and_keys_are_pressed(tmp_path: Path) -> None:
    rules = [{"match": "human", "tool": "transfer_call", "args": {"destination": "sales",
              "summary": "Caller wants a person."}},
             {"match": "press", "tool": "send_dtmf", "args": {"digits": "1 2#"}}]  # fmt: skip
    tools = [{"type": "transfer_call", "mode": "warm",
              "destinations": [{"name": "sales", "number": "+14155550123"}]},
             {"type": "send_dtmf"}]  # fmt: skip
    agent = agent_with(tmp_path, rules, tools=tools)
    conv, outbox, _ = make_conversation(agent, scripted.create({"rules": rules}))
    await conv.start()
    await conv.handle(transcript("press one"), seq=2)
    await eventually(lambda: bool(of(outbox, SendDtmf)))
    assert of(outbox, SendDtmf)[0].data.digits == "12#"
    await conv.idle()
    await conv.handle(transcript("a human please"), seq=3)
    await eventually(lambda: conv.session.ending)
    assert of(outbox, Transfer) == []  # not before the hold line has played
    hold = of(outbox, AgentReply)[-1]
    assert hold.data.text == "Please hold while I transfer you."
    await conv.handle(stopped(hold.data.utterance_id), seq=4)
    await eventually(lambda: bool(of(outbox, Transfer)))
    (transfer,) = of(outbox, Transfer)
    assert transfer.data.to_number == "+14155550123"
    assert transfer.data.mode is TransferMode.WARM
    assert transfer.data.announcement == "Caller wants a person."


async def test_keypad_input_reaches_the_llm_as_the_callers_words(tmp_path: Path) -> None:
    rules = [{"match": r"\(keypad\) (?P<d>\d+)", "reply": "You pressed {{d}}."}]
    agent = agent_with(tmp_path, rules)
    conv, outbox, _ = make_conversation(agent, scripted.create({"rules": rules}))
    await conv.start()
    await conv.handle(transcript("hello"), seq=2)  # the agent is answering...
    await conv.handle(keys("4"), seq=3)  # ...and keys arrive meanwhile: kept
    await conv.handle(keys("2#"), seq=4)
    await eventually(lambda: "You pressed 42." in [r.data.text for r in of(outbox, AgentReply)])
    assert ("user", "(keypad) 42") in [(m.role, m.content) for m in conv.session.history]


def _hygiene(agent: Agent, **changes: Any) -> Agent:
    hygiene = Hygiene().model_copy(update=changes)  # below the schema's minimums: a fast test
    return Agent(agent.id, 1, "", agent.spec.model_copy(update={"hygiene": hygiene}), agent.tools)


async def test_a_silent_caller_is_reprompted_then_the_agent_hangs_up(tmp_path: Path) -> None:
    agent = _hygiene(agent_with(tmp_path, [], greeting="Hi."),
                     idle_timeout_s=0.05, idle_max_reprompts=1)  # fmt: skip
    conv, outbox, _ = make_conversation(agent, scripted.create({}))
    await conv.start()
    greeting = of(outbox, AgentReply)[0].data.utterance_id
    await conv.handle(stopped(greeting), seq=2)
    await eventually(lambda: len(of(outbox, CallIdle)) == 1)
    assert of(outbox, CallIdle)[0].data.action == "reprompt"
    assert "Are you still there?" in [s.data.text for s in says(outbox)]
    assert conv.last_utterance is not None
    await conv.handle(stopped(conv.last_utterance), seq=3)
    await eventually(lambda: len(of(outbox, CallIdle)) == 2)
    assert of(outbox, CallIdle)[1].data.action == "hangup"
    assert conv.session.ending
    goodbye = next(s for s in says(outbox) if "disconnected" in s.data.text)
    await conv.handle(stopped(goodbye.data.utterance_id), seq=4)
    await eventually(lambda: bool(of(outbox, HangUp)))
    assert of(outbox, HangUp)[0].data.reason is EndReason.IDLE


async def test_the_caller_speaking_resets_the_idle_clock(tmp_path: Path) -> None:
    agent = _hygiene(agent_with(tmp_path, [], greeting="Hi."), idle_timeout_s=0.2)
    conv, outbox, _ = make_conversation(agent, scripted.create({}))
    await conv.start()
    await conv.handle(stopped(of(outbox, AgentReply)[0].data.utterance_id), seq=2)
    await asyncio.sleep(0.1)
    await conv.handle(transcript("hello"), seq=3)
    await asyncio.sleep(0.3)  # the agent's answer has not played yet: no idle clock
    assert of(outbox, CallIdle) == []


async def test_the_time_limit_closes_the_call(tmp_path: Path) -> None:
    agent = _hygiene(agent_with(tmp_path, [], greeting="Hi."), max_duration_s=0.1)
    conv, outbox, _ = make_conversation(agent, scripted.create({}))
    await conv.start()
    await eventually(lambda: conv.session.ending)
    line = next(s for s in says(outbox) if "time limit" in s.data.text)
    await conv.handle(stopped(line.data.utterance_id), seq=2)
    await eventually(lambda: bool(of(outbox, HangUp)))
    assert of(outbox, HangUp)[0].data.reason is EndReason.MAX_DURATION
