"""Fakes and builders shared by the orchestrator's unit tests (imported by name)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from voicebus.contracts.commands import Say
from voicebus.contracts.events import (
    AgentSpeechInterrupted,
    AgentSpeechInterruptedData,
    AgentSpeechStopped,
    AgentSpeechStoppedData,
    CallStarted,
    CallStartedData,
    Direction,
    DtmfReceived,
    DtmfReceivedData,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.engines.base import (
    ChatMessage,
    EngineError,
    LLMChunk,
    LLMEngine,
    ToolSpec,
)
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.conversation import CallServices, Conversation, ConversationSettings
from voicebus.orchestrator.outbox import RecordingOutbox
from voicebus.orchestrator.session import MemorySessionStore, Session

AGENT = """
name: Test
defaults: {customer_name: there}
system_prompt: You help {{customer_name}}.
greeting: Hi {{customer_name}}, this is Acme. How can I help?
goodbye: Goodbye!
llm: {engine: scripted}
tools:
  - type: end_call
  - {type: data, name: check_order_status, description: d, file: orders.json,
     key: order_id, key_format: digits}
"""

RULES: dict[str, Any] = {
    "rules": [
        {"match": r"\bbye\b", "tool": "end_call"},
        {
            "match": r"order (?P<order_id>\d+)",
            "reply": "Let me check order {{order_id}}.",
            "tool": "check_order_status",
            "args": {"order_id": "{{order_id}}"},
            "after_tool": "Order {{order_id}} is {{status}}. Anything else?",
        },
        {"match": "long", "reply": "One two three. Four five six. Seven eight nine. Ten."},
    ],
    "default": "Sorry?",
}


class Recorder:
    """Wraps an engine and keeps the messages of every call (what the LLM was shown)."""

    def __init__(self, engine: LLMEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.seen: list[list[ChatMessage]] = []
        self.tools: list[list[ToolSpec]] = []

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        self.seen.append(list(messages))
        self.tools.append(list(tools))
        return self.engine.stream(messages, tools)


class Failing:
    """An engine that fails after ``chunks`` (none: its server is down)."""

    name = "failing"

    def __init__(self, chunks: Sequence[LLMChunk] = (), *, fail: bool = True) -> None:
        self.chunks = chunks
        self.fail = fail

    @classmethod
    def silent(cls) -> Failing:
        """A model that answers nothing at all, without an error."""
        return cls(fail=False)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        for chunk in self.chunks:
            yield chunk
        if self.fail:
            raise EngineError("openai: cannot reach the server", retryable=True)


def started(context: dict[str, str] | None = None) -> CallStarted:
    return CallStarted(
        tenant_id="acme", call_id="c1", source="test/1",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id="test",
                             gateway_instance="gw", context=context or {}),
    )  # fmt: skip


def transcript(text: str) -> TranscriptFinal:
    return TranscriptFinal(
        tenant_id="acme", call_id="c1", source="test/1",
        data=TranscriptFinalData(utterance_id="u1", text=text, start_ms=0, end_ms=1000),
    )  # fmt: skip


def interrupted(utterance_id: str, heard: str) -> AgentSpeechInterrupted:
    return AgentSpeechInterrupted(
        tenant_id="acme", call_id="c1", source="test/1",
        data=AgentSpeechInterruptedData(utterance_id=utterance_id, text_planned="x",
                                        text_heard=heard, played_ms=500),
    )  # fmt: skip


def stopped(utterance_id: str) -> AgentSpeechStopped:
    return AgentSpeechStopped(
        tenant_id="acme", call_id="c1", source="test/1",
        data=AgentSpeechStoppedData(utterance_id=utterance_id, text="x", played_ms=900),
    )  # fmt: skip


def keys(digits: str, *, masked: bool = False) -> DtmfReceived:
    return DtmfReceived(
        tenant_id="acme", call_id="c1", source="test/1",
        data=DtmfReceivedData(digits=digits, masked=masked),
    )  # fmt: skip


def says(outbox: RecordingOutbox) -> list[Say]:
    return [m for m in outbox.sent if isinstance(m, Say)]


def of(outbox: RecordingOutbox, kind: type[Any]) -> list[Any]:
    return [m for m in outbox.sent if isinstance(m, kind)]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def make_conversation(
    agent: Agent,
    engine: LLMEngine,
    *,
    outbox: RecordingOutbox | None = None,
    store: MemorySessionStore | None = None,
    session: Session | None = None,
    revision: int | None = None,
    settings: ConversationSettings | None = None,
    context: dict[str, str] | None = None,
    services: CallServices | None = None,
) -> tuple[Conversation, RecordingOutbox, MemorySessionStore]:
    outbox = outbox or RecordingOutbox()
    store = store or MemorySessionStore()
    conversation = Conversation(
        session=session or Conversation.new_session(started(context), agent),
        agent=agent,
        engine=engine,
        outbox=outbox,
        store=store,
        settings=settings or ConversationSettings(),
        services=services,
        revision=revision,
    )
    return conversation, outbox, store
