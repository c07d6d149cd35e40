"""The built-in do_not_call tool: the callee's request becomes a ``dnc.requested`` event."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from orchestrator_fakes import eventually, make_conversation, of, transcript

from voicebus.contracts.commands import HangUp
from voicebus.contracts.events import DncRequested, ToolResult
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import load_agent

pytestmark = pytest.mark.unit

AGENT = """
name: Dialer
system_prompt: You call about renewals.
greeting: Hi, this is Acme.
goodbye: Understood, we will not call again. Goodbye!
llm: {engine: scripted}
tools:
  - type: do_not_call
"""
RULES = {"rules": [{"match": "stop calling", "tool": "do_not_call"}], "default": "Sorry?"}


async def test_stop_calling_me_publishes_dnc_requested_and_ends_the_call(tmp_path: Path) -> None:
    path = tmp_path / "dialer.yaml"
    path.write_text(textwrap.dedent(AGENT))
    agent = load_agent(path, {})
    conv, outbox, _store = make_conversation(agent, scripted.create(RULES))
    await conv.start()
    await conv.handle(transcript("please stop calling me"))
    await eventually(lambda: bool(of(outbox, DncRequested)))
    (request,) = of(outbox, DncRequested)
    assert request.call_id == "c1"
    assert request.data.to_number is None  # campaigns knows the callee from the call id
    (result,) = of(outbox, ToolResult)
    assert result.data.ok
    assert result.data.name == "do_not_call"
    await eventually(lambda: bool(of(outbox, HangUp)))
