"""Live supervision of one conversation with fakes: whisper, take over, hand back."""

from __future__ import annotations

import pytest
from orchestrator_fakes import RULES, Recorder, make_conversation, of, says, transcript

from voicebus.contracts.commands import Clear
from voicebus.contracts.events import (
    AgentReply,
    SupervisionEnded,
    SupervisionEndedData,
    SupervisionHandedBack,
    SupervisionHandedBackData,
    SupervisionHumanSaid,
    SupervisionHumanSaidData,
    SupervisionTakenOver,
    SupervisionTakenOverData,
    SupervisionWhispered,
    SupervisionWhisperedData,
)
from voicebus.engines.llm import scripted
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.supervision import HUMAN_AGENT, WHISPER_PREFIX

pytestmark = pytest.mark.unit

_CALL = {"tenant_id": "acme", "call_id": "c1", "source": "edge/e-1"}


def whispered(note: str) -> SupervisionWhispered:
    return SupervisionWhispered(**_CALL, data=SupervisionWhisperedData(operator="k1", note=note))


def taken_over() -> SupervisionTakenOver:
    data = SupervisionTakenOverData(operator="k1", utterance_id="op-1")
    return SupervisionTakenOver(**_CALL, data=data)


def human_said(text: str) -> SupervisionHumanSaid:
    return SupervisionHumanSaid(**_CALL, data=SupervisionHumanSaidData(operator="k1", text=text))


def handed_back(operator: str = "k1") -> SupervisionHandedBack:
    return SupervisionHandedBack(**_CALL, data=SupervisionHandedBackData(operator=operator))


def ended(operator: str) -> SupervisionEnded:
    return SupervisionEnded(**_CALL, data=SupervisionEndedData(operator=operator))


async def test_a_whisper_reaches_the_next_llm_request_and_is_never_spoken(agent: Agent) -> None:
    llm = Recorder(scripted.create(RULES))
    conv, outbox, _ = make_conversation(agent, llm)
    await conv.start()
    await conv.handle(whispered("Offer the loyalty discount."), seq=2)
    outbox.sent.clear()
    await conv.handle(transcript("hello there"), seq=3)
    await conv.idle()
    shown = [(m.role, m.content) for m in llm.seen[-1]]
    assert ("system", WHISPER_PREFIX + "Offer the loyalty discount.") in shown
    assert shown[-1] == ("user", "hello there")  # the note came before the caller's line
    assert all("loyalty" not in s.data.text for s in says(outbox))


async def test_taken_over_the_agent_is_silent_then_resumes_with_the_humans_lines(
    agent: Agent,
) -> None:
    llm = Recorder(scripted.create(RULES))
    conv, outbox, store = make_conversation(agent, llm)
    await conv.start()
    await conv.handle(transcript("long"), seq=2)  # a long reply in progress...
    await conv.handle(taken_over(), seq=3)  # ...is cut when the operator takes over
    await conv.idle()
    (clear,) = of(outbox, Clear)
    assert clear.data.reason == "cancelled"
    outbox.sent.clear()
    calls = len(llm.seen)

    await conv.handle(transcript("I want a person"), seq=4)
    await conv.handle(human_said("Hi, this is Sam from Acme."), seq=5)
    await conv.idle()
    assert says(outbox) == []
    assert of(outbox, AgentReply) == []
    assert len(llm.seen) == calls  # no LLM request while a person holds the call
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].supervisor == "k1"

    await conv.handle(handed_back(), seq=6)
    await conv.handle(transcript("order 1234"), seq=7)
    await conv.idle()
    assert of(outbox, AgentReply)  # the agent answers again
    shown = [(m.role, m.content, m.name) for m in llm.seen[-1]]
    assert ("user", "I want a person", None) in shown
    assert ("assistant", "Hi, this is Sam from Acme.", HUMAN_AGENT) in shown
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].supervisor is None


async def test_only_the_operator_holding_the_call_gives_it_back(agent: Agent) -> None:
    llm = Recorder(scripted.create(RULES))
    conv, outbox, store = make_conversation(agent, llm)
    await conv.start()
    await conv.handle(taken_over(), seq=2)
    # A second operator, only listening, closes their page; another hands back nothing.
    await conv.handle(ended("k2"), seq=3)
    await conv.handle(handed_back("k2"), seq=4)
    outbox.sent.clear()
    await conv.handle(transcript("order 1234"), seq=5)
    await conv.idle()
    assert of(outbox, AgentReply) == []  # still held by k1: the agent stays silent
    loaded = await store.load("c1")
    assert loaded is not None
    assert loaded[0].supervisor == "k1"

    await conv.handle(ended("k1"), seq=6)  # k1 closes without a hand-back: it is given back
    await conv.handle(transcript("order 1234"), seq=7)
    await conv.idle()
    assert of(outbox, AgentReply)
