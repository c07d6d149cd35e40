"""A flow agent's call with fakes: nodes, transitions with arguments, keypad digits, a tool
action, a handoff to another agent, events, and a successor resuming at the same node."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from orchestrator_fakes import eventually, keys, make_conversation, of, says, stopped, transcript

from voicebus.contracts.agents import parse_definition
from voicebus.contracts.commands import MaskKeypad
from voicebus.contracts.events import (
    AgentHandoff,
    AgentReply,
    Envelope,
    FlowNodeEntered,
    FlowTransition,
    ToolResult,
)
from voicebus.engines.base import LLMEngine
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent, compile_agent
from voicebus.orchestrator.conversation import CallServices, Conversation

pytestmark = pytest.mark.unit

SUPPORT: dict[str, Any] = {
    "name": "Support",
    "system_prompt": "You are Acme support.",
    "greeting": "Hi, this is Acme.",
    "llm": {"engine": "scripted", "options": {"rules": [
        {"match": r"\baccount\b", "reply": "Sure.", "tool": "start_verification",
         "args": {"reason": "account question"}},
        {"match": r"The caller is (?P<name>\w+)", "reply": "Thanks {{name}}, you are verified.",
         "tool": "to_billing"},
    ], "default": "Sorry?"}},
    "tools": [{"type": "data", "name": "lookup_account", "description": "d",
               "file": "accounts.json", "key": "pin"}],
    "flow": {"initial": "greet", "nodes": [
        {"id": "greet", "task": "Ask how you can help.", "transitions": [
            {"name": "start_verification", "description": "The caller asks about an account.",
             "target": "verify",
             "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}]},
        {"id": "verify", "collect_digits": {"variable": "pin", "min_length": 4, "max_length": 4,
                                            "next": "lookup"},
         "pre_actions": [{"say": "Please key in your four digit PIN."}]},
        {"id": "lookup", "tools": [],
         "pre_actions": [{"tool": "lookup_account", "args": {"pin": "{{pin}}"},
                          "result_variable": "account"}],
         "task": "The caller is {{account.name}}. Confirm and move to billing.",
         "post_actions": [{"set": {"name": "{{account.name}}"}}],
         "transitions": [{"name": "to_billing", "description": "d", "target": "handoff",
                          "context": "reset"}]},
        {"id": "handoff", "handoff": {"agent_id": "billing", "announce": "Passing you to billing.",
                                      "context": "keep"}},
    ]},
}  # fmt: skip

BILLING: dict[str, Any] = {
    "name": "Billing",
    "system_prompt": "You are billing. The caller is {{name}}.",
    "variables": [{"name": "name"}],
    "greeting": "Billing here.",
    "llm": {"engine": "scripted", "options": {"default": "Your balance is zero."}},
}


def compiled(agent_id: str, raw: dict[str, Any], tmp_path: Path) -> tuple[Agent, LLMEngine]:
    definition = parse_definition(raw)
    agent = compile_agent(agent_id, 1, "", definition, tmp_path, {})
    return agent, scripted.create(dict(definition.llm.options))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[tuple[Agent, LLMEngine], CallServices]:
    (tmp_path / "accounts.json").write_text('{"1234": {"name": "Ada", "plan": "gold"}}')
    billing = compiled("billing", BILLING, tmp_path)

    async def agents(tenant_id: str, agent_id: str) -> tuple[Agent, LLMEngine] | None:
        return billing if agent_id == "billing" else None

    return compiled("support", SUPPORT, tmp_path), CallServices(agents=agents)


async def test_a_flow_from_greeting_through_keypad_and_a_tool_to_a_handoff(
    setup: tuple[tuple[Agent, LLMEngine], CallServices],
) -> None:
    (agent, engine), services = setup
    conv, outbox, _store = make_conversation(agent, engine, services=services)
    await conv.start()
    entered = of(outbox, FlowNodeEntered)
    assert [(e.data.node_id, e.data.previous_node_id) for e in entered] == [("greet", None)]
    assert conv.session.flow_node == "greet"
    assert {s.name for s in conv.toolbox.specs} == {"lookup_account", "start_verification"}

    await conv.handle(transcript("I have a question about my account"), seq=5)
    await eventually(lambda: conv.session.flow_node == "verify" and conv._turn is not None
                     and conv._turn.done())  # fmt: skip
    (move,) = of(outbox, FlowTransition)
    assert (move.data.from_node_id, move.data.to_node_id, move.data.function) == (
        "greet", "verify", "start_verification")  # fmt: skip
    assert move.data.arguments == {"reason": "account question"}
    assert conv.session.variables["reason"] == "account question"
    assert "Please key in your four digit PIN." in [s.data.text for s in says(outbox)]

    # Keys arrive in pieces (the agent may still be speaking): none is lost.
    await conv.handle(keys("12"), seq=6)
    assert conv.session.digits == "12"
    await conv.handle(keys("34"), seq=7)  # max_length reached: the input is complete
    await eventually(lambda: any(isinstance(e, AgentHandoff) for e in outbox.sent))
    await conv.idle()

    moves = [(e.data.from_node_id, e.data.to_node_id, e.data.function, e.data.arguments)
             for e in of(outbox, FlowTransition)]  # fmt: skip
    assert moves[1:] == [
        ("verify", "lookup", "collect_digits", {"pin": "1234"}),
        ("lookup", "handoff", "to_billing", {}),
    ]
    (looked_up,) = [r for r in of(outbox, ToolResult) if r.data.name == "lookup_account"]
    assert looked_up.data.ok
    assert conv.session.variables["account"] == {"found": True, "pin": "1234", "name": "Ada",
                                                 "plan": "gold"}  # fmt: skip
    spoken = " ".join(s.data.text for s in says(outbox))
    assert "Thanks Ada, you are verified." in spoken
    assert "Passing you to billing. Billing here." in spoken
    (handoff,) = of(outbox, AgentHandoff)
    assert (handoff.data.from_agent_id, handoff.data.to_agent_id) == ("support", "billing")
    assert handoff.data.variables["pin"] == "1234"
    # The billing agent answers from now on, with its own prompt and no flow.
    assert conv.agent.id == "billing"
    assert conv.session.agent_id == "billing"
    assert conv.session.history[0].content == "You are billing. The caller is Ada."
    await conv.handle(transcript("What do I owe?"), seq=8)
    await eventually(lambda: of(outbox, AgentReply)[-1].data.agent_id == "billing")
    await conv.idle()
    assert of(outbox, AgentReply)[-1].data.text == "Your balance is zero."
    # Each chunk names the agent speaking it: media speaks the billing agent in its voice.
    voices = {s.data.text: s.data.agent_id for s in says(outbox) if s.data.text}
    assert voices["Please key in your four digit PIN."] == "support"
    assert voices["Billing here."] == "billing"
    assert voices["Your balance is zero."] == "billing"


async def test_a_successor_resumes_at_the_same_node_with_the_same_variables(
    setup: tuple[tuple[Agent, LLMEngine], CallServices],
) -> None:
    (agent, engine), services = setup
    conv, _outbox, store = make_conversation(agent, engine, services=services)
    await conv.start()
    await conv.handle(transcript("my account please"), seq=5)
    await eventually(lambda: conv.session.flow_node == "verify")
    await conv.idle()
    await conv.handle(keys("1"), seq=6)
    await conv.save()
    await conv.close()

    loaded = await store.load("c1")
    assert loaded is not None
    session, revision = loaded
    assert (session.flow_node, session.variables, session.digits) == (
        "verify", {"reason": "account question"}, "1")  # fmt: skip
    successor, outbox2, _ = make_conversation(agent, engine, store=store, session=session,
                                              revision=revision, services=services)  # fmt: skip
    await successor.resume()
    await successor.handle(keys("234"), seq=7)
    await eventually(lambda: any(isinstance(e, AgentHandoff) for e in outbox2.sent))
    await successor.idle()
    moves = [(e.data.to_node_id, e.data.arguments) for e in of(outbox2, FlowTransition)]
    assert moves[0] == ("lookup", {"pin": "1234"})
    assert successor.session.variables["account"]["name"] == "Ada"


async def test_too_few_digits_are_asked_again_and_a_pause_completes_the_input(
    setup: tuple[tuple[Agent, LLMEngine], CallServices], tmp_path: Path
) -> None:
    (agent, engine), services = setup
    flow = agent.spec.flow
    assert flow is not None
    verify = flow.nodes[1].model_copy(update={"collect_digits": flow.nodes[1].collect_digits
                                              .model_copy(update={"inter_digit_timeout_s": 0.05})})  # type: ignore[union-attr]  # fmt: skip
    quick = flow.model_copy(update={"nodes": [flow.nodes[0], verify, *flow.nodes[2:]]})
    agent = Agent(agent.id, 1, "", agent.spec.model_copy(update={"flow": quick}), agent.tools)
    conv, outbox, _ = make_conversation(agent, engine, services=services)
    await conv.start()
    await conv.handle(transcript("account"), seq=5)
    await eventually(lambda: conv.session.flow_node == "verify")
    await conv.idle()
    await conv.handle(keys("12"), seq=6)
    await eventually(lambda: "Sorry, I didn't get that. Please enter it again."
                     in " ".join(s.data.text for s in says(outbox)))  # fmt: skip
    assert conv.session.flow_node == "verify"
    assert conv.session.digits == ""


async def test_an_end_node_says_the_goodbye_and_hangs_up(tmp_path: Path) -> None:
    raw = {"name": "x", "system_prompt": "p", "goodbye": "Bye now.",
           "llm": {"engine": "scripted", "options": {"rules": [
               {"match": "done", "tool": "finish"}]}},
           "flow": {"initial": "a", "nodes": [
               {"id": "a", "transitions": [{"name": "finish", "description": "d", "target": "z"}]},
               {"id": "z", "end": True, "pre_actions": [{"say": "All set."}]}]}}  # fmt: skip
    agent, engine = compiled("x", raw, tmp_path)
    conv, outbox, _ = make_conversation(agent, engine)
    await conv.start()
    await conv.handle(transcript("I am done"), seq=3)
    await eventually(lambda: conv.session.ending)
    spoken = [s.data.text for s in says(outbox)]
    assert "All set." in spoken
    assert "Bye now." in spoken
    reply = of(outbox, AgentReply)[-1]
    await conv.handle(stopped(reply.data.utterance_id), seq=4)
    await eventually(lambda: any(type(c).__name__ == "HangUp" for c in outbox.sent))
    assert isinstance(conv, Conversation)


async def test_a_node_with_its_own_llm_options_is_answered_by_its_own_engine(
    tmp_path: Path,
) -> None:
    raw = {"name": "x", "system_prompt": "p", "greeting": "Hi.",
           "llm": {"engine": "scripted", "options": {"default": "general answer", "rules": [
               {"match": "careful", "tool": "be_careful"}]}},
           "flow": {"initial": "a", "nodes": [
               {"id": "a", "transitions": [{"name": "be_careful", "description": "d",
                                            "target": "b"}]},
               {"id": "b", "respond_immediately": False,
                "llm_options": {"default": "careful answer"}}]}}  # fmt: skip
    agent, engine = compiled("x", raw, tmp_path)
    node_engines: list[str] = []

    def node_engine(agent: Agent, node_id: str) -> LLMEngine | None:
        node_engines.append(node_id)
        if node_id != "b":
            return None
        return scripted.create({**agent.spec.llm.options, **(agent.spec.flow.nodes[1].llm_options
                                                             or {})})  # type: ignore[union-attr]  # fmt: skip

    conv, outbox, _ = make_conversation(agent, engine, services=CallServices(
        node_engine=node_engine))  # fmt: skip
    await conv.start()
    await conv.handle(transcript("hello"), seq=2)
    await eventually(lambda: len(of(outbox, AgentReply)) >= 2)
    await conv.idle()
    assert of(outbox, AgentReply)[-1].data.text == "general answer"
    await conv.handle(transcript("be careful"), seq=3)
    await eventually(lambda: conv.session.flow_node == "b")
    await conv.idle()
    await conv.handle(transcript("and now?"), seq=4)
    await eventually(lambda: of(outbox, AgentReply)[-1].data.text == "careful answer")
    assert "b" in node_engines


async def test_a_sensitive_keypad_node_masks_the_digits_in_every_event_not_in_the_tools(
    tmp_path: Path,
) -> None:
    (tmp_path / "accounts.json").write_text('{"1234": {"name": "Ada", "plan": "gold"}}')
    raw = copy.deepcopy(SUPPORT)
    raw["flow"]["nodes"][1]["collect_digits"]["sensitive"] = True
    agent, engine = compiled("support", raw, tmp_path)
    conv, outbox, _store = make_conversation(agent, engine)
    await conv.start()
    await conv.handle(transcript("I have a question about my account"), seq=5)
    await eventually(lambda: conv.session.flow_node == "verify" and conv._turn is not None
                     and conv._turn.done())  # fmt: skip
    # The gateway stores masked keys; the real ones reach the orchestrator on vb.keys.
    await conv.handle(keys("****", masked=True), seq=6)
    assert conv.session.digits == ""
    await conv.handle(keys("1234"))
    await eventually(lambda: conv.session.flow_node == "handoff")
    await conv.idle()

    # The tool got the real digits and found the account ...
    (looked_up,) = [r for r in of(outbox, ToolResult) if r.data.name == "lookup_account"]
    assert looked_up.data.ok
    assert conv.session.variables["pin"] == "1234"
    assert conv.session.variables["account"]["name"] == "Ada"
    # ... and no event the call published shows them.
    moves = {e.data.function: e.data.arguments for e in of(outbox, FlowTransition)}
    assert moves["collect_digits"] == {"pin": "****"}
    published = [e.model_dump_json() for e in outbox.sent if isinstance(e, Envelope)]
    assert published
    assert not [e for e in published if "1234" in e]
    assert any("****" in e for e in published)
    # The recorder silences the caller from the PIN node's entry to the next node's.
    sensitive = {e.data.node_id: e.data.sensitive_input for e in of(outbox, FlowNodeEntered)}
    assert sensitive == {"greet": False, "verify": True, "lookup": False, "handoff": False}
    # ... and the gateway masks the keys from the PIN node's entry to the next node's.
    assert [c.data.masked for c in of(outbox, MaskKeypad)] == [True, False]
