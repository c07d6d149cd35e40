"""Post-call work with fakes: the repair retry, a failure that is never lost, idempotency,
memory updates, and retries while the LLM is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicebus.contracts.agents import AgentDefinition
from voicebus.contracts.events import CallAnalyzed, CallEnded, CallEndedData, EndReason
from voicebus.engines.base import LLM, ChatMessage, EngineError, LLMChunk, LLMEngine, ToolSpec
from voicebus.engines.builtin import load_builtin_engines
from voicebus.orchestrator.agents import Agent, compile_agent
from voicebus.orchestrator.memory import InMemoryCallerMemory
from voicebus.orchestrator.post_call import PostCall, PostCallPorts
from voicebus.orchestrator.session import MemorySessionStore, Session, StoredMessage

pytestmark = pytest.mark.unit

GOOD = (
    '{"summary": "Asked about order {{order_id}}.", '
    '"extraction": {"order_id": "{{order_id}}", "callback_requested": false}, '
    '"disposition": "resolved", "caller_name": "Ada", "open_issues": ["refund"]}'
)


def _definition(rules: list[dict[str, Any]], memory: bool = True) -> AgentDefinition:
    body = yaml.safe_load(
        """
name: Support
system_prompt: You help callers.
analysis:
  extraction:
    type: object
    properties: {order_id: {type: string}, callback_requested: {type: boolean}}
    required: [order_id, callback_requested]
  dispositions: [resolved, callback]
"""
    )
    body["llm"] = {"engine": "scripted", "options": {"rules": rules}}
    body["memory"] = {"enabled": memory}
    return AgentDefinition.model_validate(body)


class Ports:
    """The fakes behind :class:`PostCallPorts`."""

    def __init__(self, agent: Agent, engine: LLMEngine) -> None:
        self.sessions = MemorySessionStore()
        self.memory = InMemoryCallerMemory()
        self.published: list[CallAnalyzed] = []
        self.agent, self.engine = agent, engine

    async def _agent(self, _session: Session) -> tuple[Agent, LLMEngine]:
        return self.agent, self.engine

    async def _analysed(self, call_id: str) -> bool:
        return any(e.call_id == call_id for e in self.published)

    async def _publish(self, event: CallAnalyzed) -> None:
        self.published.append(event)

    def ports(self) -> PostCallPorts:
        return PostCallPorts(sessions=lambda: self.sessions, agent=self._agent,
                             memory=lambda: self.memory, analysed=self._analysed,
                             publish=self._publish, source="orchestrator/t")  # fmt: skip


def _ports(rules: list[dict[str, Any]], memory: bool = True) -> Ports:
    load_builtin_engines()
    definition = _definition(rules, memory)
    agent = compile_agent("support", 1, "acme", definition, Path("."), {})
    engine = LLM.create("scripted", definition.llm.options)
    return Ports(agent, engine)


async def _session(ports: Ports, call_id: str = "c1") -> None:
    session = Session(call_id=call_id, tenant_id="acme", agent_id="support", agent_owner="acme",
                      agent_version=1, caller="+14155550100",
                      history=[StoredMessage(role="system", content="You help callers."),
                               StoredMessage(role="user", content="Where is order 1234?"),
                               StoredMessage.assistant("It shipped.", "u1")])  # fmt: skip
    await ports.sessions.save(session, None)


def _ended(call_id: str = "c1") -> CallEnded:
    return CallEnded(tenant_id="acme", call_id=call_id, source="gateway/t",
                     data=CallEndedData(reason=EndReason.CALLER_HANGUP))  # fmt: skip


async def test_a_call_is_analysed_remembered_and_its_session_forgotten_once() -> None:
    ports = _ports([{"match": r"(?s)^Analyse this call.*order (?P<order_id>\d+)", "reply": GOOD}])
    await _session(ports)
    post = PostCall(ports.ports(), timeout_s=5, attempts=3)
    event = await post.handle(_ended())
    assert event is not None
    assert event.data.ok, event.data.error
    assert event.data.extraction == {"order_id": "1234", "callback_requested": False}
    assert event.data.disposition == "resolved"
    assert event.data.transcript_turns == 2
    assert await ports.sessions.load("c1") is None
    profile = await ports.memory.get("acme", "+14155550100")
    assert profile is not None
    assert profile.name == "Ada"
    assert [c.summary for c in profile.calls] == ["Asked about order 1234."]
    assert await post.handle(_ended()) is None  # redelivered: nothing twice
    assert len(ports.published) == 1

    # Published, but the session's delete failed: the redelivery only deletes it.
    await _session(ports)
    assert await post.handle(_ended()) is None
    assert len(ports.published) == 1
    assert await ports.sessions.load("c1") is None
    profile = await ports.memory.get("acme", "+14155550100")
    assert profile is not None
    assert len(profile.calls) == 1


async def test_an_end_on_another_tenant_s_subject_touches_nothing() -> None:
    ports = _ports([{"match": r"(?s)^Analyse this call.*order (?P<order_id>\d+)", "reply": GOOD}])
    await _session(ports)
    post = PostCall(ports.ports(), timeout_s=5, attempts=3)
    forged = CallEnded(tenant_id="globex", call_id="c1", source="gateway/t",
                       data=CallEndedData(reason=EndReason.CALLER_HANGUP))  # fmt: skip
    assert await post.handle(forged) is None
    assert ports.published == []
    assert await ports.sessions.load("c1") is not None
    assert ports.memory.profiles == {}


async def test_invalid_json_gets_one_repair_request() -> None:
    ports = _ports([
        {"match": r"^That answer is not usable: invalid JSON", "reply": GOOD.replace(
            "{{order_id}}", "1234")},
        {"match": r"(?s)^Analyse this call", "reply": '{"summary": "Asked about", oops}'},
    ])  # fmt: skip
    await _session(ports)
    event = await PostCall(ports.ports(), timeout_s=5, attempts=3).handle(_ended())
    assert event is not None
    assert event.data.ok, event.data.error
    assert event.data.extraction == {"order_id": "1234", "callback_requested": False}


async def test_a_second_bad_answer_is_published_with_the_error_and_the_raw_text() -> None:
    bad = '{"summary": "s", "extraction": {"order_id": 1234}, "disposition": "resolved"}'
    ports = _ports([{"match": r"(?s)^(Analyse|That answer)", "reply": bad}], memory=False)
    await _session(ports)
    event = await PostCall(ports.ports(), timeout_s=5, attempts=3).handle(_ended())
    assert event is not None
    assert not event.data.ok
    assert event.data.error is not None
    assert "extraction.order_id: 1234 is not of type 'string'" in event.data.error
    assert "callback_requested" in event.data.error
    assert event.data.raw == bad
    assert event.data.summary == "s"
    assert event.data.extraction is None
    assert ports.memory.profiles == {}  # memory off: nothing remembered
    assert await ports.sessions.load("c1") is None


class DownLLM:
    """An LLM that always fails."""

    name = "down"

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        raise EngineError("connection refused")
        yield  # pragma: no cover  # makes this an async generator


async def test_an_llm_outage_is_retried_then_reported_never_lost() -> None:
    ports = _ports([])
    ports.engine = DownLLM()
    await _session(ports)
    post = PostCall(ports.ports(), timeout_s=5, attempts=3)
    for delivered in (1, 2):
        with pytest.raises(EngineError):
            await post.handle(_ended(), delivered=delivered)
        assert await ports.sessions.load("c1") is not None  # kept for the next delivery
    event = await post.handle(_ended(), delivered=3)
    assert event is not None
    assert not event.data.ok
    assert event.data.error == "the LLM failed: connection refused"
    assert await ports.sessions.load("c1") is None


async def test_a_call_without_analysis_only_forgets_its_session() -> None:
    ports = _ports([])
    plain = AgentDefinition.model_validate(
        {"name": "x", "system_prompt": "p", "llm": {"engine": "scripted"}}
    )
    ports.agent = compile_agent("support", 1, "acme", plain, Path("."), {})
    await _session(ports)
    assert await PostCall(ports.ports(), timeout_s=5, attempts=3).handle(_ended()) is None
    assert ports.published == []
    assert await ports.sessions.load("c1") is None
