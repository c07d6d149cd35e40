"""Simulations: caller inputs through the real conversation, tenant tools held back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from orchestrator_fakes import RULES
from test_flow import SUPPORT, compiled

from voicebus.contracts.replay import CallerInput, RecordedResult, SimulateCall
from voicebus.engines.base import ToolSpec
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.conversation import CallServices, ConversationSettings
from voicebus.orchestrator.simulation import simulate
from voicebus.orchestrator.tools import CallTools

pytestmark = pytest.mark.unit

CRM_RULES: dict[str, Any] = {
    "rules": [
        *RULES["rules"],
        {
            "match": r"account (?P<n>\d+)",
            "tool": "crm_lookup",
            "args": {"account": "{{n}}"},
            "after_tool": "Account {{n}} is on the {{plan}} plan.",
        },
    ],
    "default": "Sorry?",
}


class NeverCalled:
    """A tenant tool that must not run in a simulation."""

    spec = ToolSpec("crm_lookup", "Look an account up.", {"type": "object"})
    ends_call = False

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        raise AssertionError("a tenant tool ran in a simulation")

    def reply(self, result: Any) -> str | None:
        return None


async def crm(agent: Agent, tenant_id: str, call_id: str) -> CallTools:
    return CallTools(tools=[NeverCalled()])


def request(*texts: str, recorded: list[RecordedResult] | None = None) -> SimulateCall:
    return SimulateCall(
        tenant_id="acme", agent_id="test", context={"customer_name": "Ada"},
        inputs=[CallerInput(text=t) for t in texts], recorded=recorded or [],
    )  # fmt: skip


async def test_each_input_is_one_turn_with_its_reply_tools_and_the_end(agent: Agent) -> None:
    turns = await simulate(
        agent, scripted.create(RULES), CallServices(), ConversationSettings(),
        request("Where is my order 1234?", "bye", "hello?"),
    )  # fmt: skip
    # The agent ended the call on "bye": the last input has nobody to answer it.
    assert [t.caller.text if t.caller else None for t in turns] == [
        None, "Where is my order 1234?", "bye",
    ]  # fmt: skip
    assert turns[0].reply == "Hi Ada, this is Acme. How can I help?"
    assert turns[1].reply == "Let me check order 1234. Order 1234 is shipped. Anything else?"
    (tool,) = turns[1].tools
    assert (tool.name, tool.arguments) == ("check_order_status", {"order_id": "1234"})
    assert tool.ok is True
    assert [t.name for t in turns[2].tools] == ["end_call"]
    assert turns[2].reply == "Goodbye!"
    assert [t.ended for t in turns] == [False, False, True]


async def test_a_tenant_tool_answers_with_the_recorded_result_for_the_same_arguments(
    agent: Agent,
) -> None:
    recorded = [RecordedResult(name="crm_lookup", arguments={"account": "77"},
                               result={"plan": "gold"})]  # fmt: skip
    turns = await simulate(
        agent, scripted.create(CRM_RULES), CallServices(tools=crm), ConversationSettings(),
        request("my account 77", "my account 78", "my account 77", recorded=recorded),
    )  # fmt: skip
    assert turns[1].reply == "Account 77 is on the gold plan."
    assert turns[1].tools[0].result == {"plan": "gold"}
    # Other arguments, or the recorded result already used: the tool fails, uncalled.
    for turn in turns[2:]:
        (step,) = turn.tools
        assert step.ok is False
        assert "no recorded result" in (step.error or "")


async def test_a_flow_agents_nodes_and_keypad_input_are_in_their_turns(tmp_path: Path) -> None:
    (tmp_path / "accounts.json").write_text('{"1234": {"name": "Ada", "plan": "gold"}}')
    agent, engine = compiled("support", SUPPORT, tmp_path)
    inputs = [CallerInput(text="A question about my account"), CallerInput(dtmf="1234")]
    turns = await simulate(
        agent, engine, CallServices(), ConversationSettings(),
        SimulateCall(tenant_id="acme", agent_id="support", inputs=inputs),
    )  # fmt: skip
    assert [t.nodes for t in turns[:2]] == [["greet"], ["verify"]]
    assert turns[1].reply == "Sure. Please key in your four digit PIN."
    assert "lookup" in turns[2].nodes
    assert turns[2].caller == CallerInput(dtmf="1234")
