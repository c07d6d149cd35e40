"""After ``call.ended``: analyse the call, update caller memory, publish ``call.analyzed``.

Off the hot path: a durable JetStream consumer (``orchestrator-post-call``) shared by
the instances, so each ended call is handled by one of them, whichever it is, and a
failure is redelivered with backoff (the runtime's delivery middleware).

**The transcript** is the call's conversation history in ``vb_sessions`` — what the
agent and the LLM saw, tool results included — which the orchestrator keeps for
takeovers anyway. It survives the owner's crash (the bucket is replicated, entries
live 6 h), so no RPC to audit is needed and nothing races audit's consumer: the
session is deleted here, once the call is analysed, instead of when the call ends.
A flow transition with ``context: reset`` shortens it (the prompt history is what
the agent kept); a call without a session (refused, a notification campaign's, or
already analysed) is not analysed.

**Idempotent on the call id**: ``call.analyzed`` has an id derived from the call, a
call already analysed in ``VB_EVENTS`` is not analysed again, and the memory update
names its call (:func:`voicebus.orchestrator.memory.remember`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage

from voicebus.contracts.agents import AnalysisSettings
from voicebus.contracts.events import CallAnalyzed, CallAnalyzedData, CallEnded
from voicebus.contracts.ids import derived_id
from voicebus.engines.base import ChatMessage, EngineError, LLMEngine, TextDelta
from voicebus.orchestrator import analysis
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.analysis import AnswerError, CallerNotes, Checked
from voicebus.orchestrator.memory import CallerMemory, remember
from voicebus.orchestrator.outbox import mask
from voicebus.orchestrator.session import Session, SessionStorage
from voicebus.runtime.consumers import event_subscriber

log = logging.getLogger(__name__)

DURABLE: Final = "orchestrator-post-call"


@dataclass(frozen=True, slots=True)
class PostCallPorts:
    """What post-call work reaches, as callables (bound once the service connected)."""

    sessions: Callable[[], SessionStorage]
    agent: Callable[[Session], Awaitable[tuple[Agent, LLMEngine] | None]]
    """The exact agent version the call ran and the LLM for its analysis."""
    memory: Callable[[], CallerMemory]
    analysed: Callable[[str], Awaitable[bool]]
    """Whether the call's ``call.analyzed`` is already in ``VB_EVENTS``."""
    publish: Callable[[CallAnalyzed], Awaitable[object]]
    """Store the event (raises when it was not stored: the call is retried)."""
    source: str


class PostCall:
    """Analyses ended calls (see the module docstring).

    Args:
        ports: where sessions, agents, memory and the bus are.
        timeout_s: longest one LLM request.
        attempts: deliveries whose LLM fails before ``call.analyzed`` reports the failure.
    """

    def __init__(self, ports: PostCallPorts, *, timeout_s: float, attempts: int) -> None:
        self._ports = ports
        self._timeout_s = timeout_s
        self._attempts = attempts

    async def handle(self, event: CallEnded, delivered: int = 1) -> CallAnalyzed | None:
        """Analyse the ended call if its agent asks for it; then forget its session.

        Returns:
            The event published, or None (nothing to analyse, or done before).

        Raises:
            EngineError, TimeoutError: the LLM failed and deliveries remain (retry).
        """
        sessions = self._ports.sessions()
        loaded = await sessions.load(event.call_id)
        if loaded is None or loaded[0].tenant_id != event.tenant_id:
            return None  # nothing to analyse, or another tenant's subject naming this call
        if await self._ports.analysed(event.call_id):  # published, then the delete failed
            await sessions.delete(event.call_id)
            return None
        session = loaded[0]
        found = await self._ports.agent(session)
        settings = found[0].spec.analysis_settings() if found is not None else None
        if found is None or settings is None:
            await sessions.delete(event.call_id)
            return None
        agent, engine = found
        data, notes = await self._analyse(agent, engine, settings, session, delivered)
        if session.sensitive:  # the conversation's own events were masked the same way
            data = CallAnalyzedData.model_validate(
                mask(data.model_dump(mode="json"), session.sensitive)
            )
        if agent.spec.memory.enabled and session.caller:
            keep = agent.spec.memory.summaries
            await self._ports.memory().update(
                session.tenant_id,
                session.caller,
                lambda p: remember(p, call_id=event.call_id, time=event.time,
                                   summary=data.summary, notes=notes, keep=keep),
                event.time,
            )  # fmt: skip
        analysed = CallAnalyzed(
            id=derived_id(event.call_id, CallAnalyzed.event_name),
            tenant_id=event.tenant_id,
            call_id=event.call_id,
            source=self._ports.source,
            data=data,
        )
        await self._ports.publish(analysed)
        await sessions.delete(event.call_id)
        log.info("call analysed", extra={"call_id": event.call_id, "ok": data.ok})
        return analysed

    async def _analyse(
        self,
        agent: Agent,
        engine: LLMEngine,
        settings: AnalysisSettings,
        session: Session,
        delivered: int,
    ) -> tuple[CallAnalyzedData, CallerNotes]:
        lines = analysis.transcript(session.history)
        memory = agent.spec.memory.enabled
        messages = analysis.request(settings, lines, memory=memory)
        answer = ""
        try:
            answer = await self._complete(engine, messages)
            checked = _read(settings, answer, memory)
            if checked.problems:  # one repair request, quoting what is wrong
                messages = analysis.repair_request(messages, answer, checked.problems)
                answer = await self._complete(engine, messages)
                checked = _read(settings, answer, memory)
        except (EngineError, TimeoutError) as exc:
            if delivered < self._attempts:
                raise
            error = f"the LLM failed: {exc}" if str(exc) else "the LLM timed out"
            failed = analysis.result(None, agent_id=agent.id, agent_version=agent.version,
                                     engine=engine.name, turns=len(lines), error=error,
                                     raw=answer or None)  # fmt: skip
            return failed, CallerNotes()
        done = analysis.result(checked, agent_id=agent.id, agent_version=agent.version,
                               engine=engine.name, turns=len(lines), raw=answer)  # fmt: skip
        return done, checked.notes

    async def _complete(self, engine: LLMEngine, messages: list[ChatMessage]) -> str:
        parts: list[str] = []
        async with asyncio.timeout(self._timeout_s):
            async for chunk in engine.stream(messages):
                if isinstance(chunk, TextDelta):
                    parts.append(chunk.text)
        return "".join(parts)


def _read(settings: AnalysisSettings, answer: str, memory: bool) -> Checked:
    try:
        parsed = analysis.parse_answer(answer)
    except AnswerError as exc:
        return Checked(problems=[str(exc)])
    return analysis.check(settings, parsed, memory=memory)


def register(broker: NatsBroker, post_call: PostCall) -> None:
    """Declare the post-call consumer on ``broker``."""

    @event_subscriber(
        broker,
        durable=DURABLE,
        event_type=CallEnded.event_name,
        ack_wait_s=120.0,
        description="After a call ends: analyse it (call.analyzed) and update caller memory.",
    )
    async def call_ended(event: CallEnded, message: NatsMessage) -> None:
        metadata = message.raw_message.metadata
        await post_call.handle(event, delivered=metadata.num_delivered or 1)
