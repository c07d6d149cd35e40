"""Caller inputs run through an agent version with the real conversation, nothing sent.

A simulation is the conversation of a call that exists nowhere but here: the same
:class:`Conversation` (flows, tools, the agent's LLM, handoffs), an outbox that keeps
what it would have sent, a session kept in memory. Each input is answered in full
before the next one is given, so a turn is exactly what the agent did in answer to
one input. What is held back, and why:

- **tenant tools** (webhooks, MCP) are never called: they act on other systems. A
  call returns the recorded result given for the same tool and the same arguments
  (each recorded result is used once, in order; one recorded without arguments matches
  any, again and again); without one the tool fails with a message saying so, and the
  LLM hears that failure like any other;
- **built-in tools** run as in a call: data lookups read the agent's files, and
  ``end_call``, ``transfer_call``, ``send_dtmf`` and ``do_not_call`` only produce
  commands and events, which stay in the outbox;
- **clocks** (idle reprompts, the call's time limit) do not run: a recorded call's
  silences are not inputs;
- every agent line counts as played at once, so a hang-up follows its goodbye without
  waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from voicebus.contracts.commands import ControlCommand, HangUp, Say, Transfer
from voicebus.contracts.events import (
    AgentSpeechStopped,
    AgentSpeechStoppedData,
    CallEvent,
    CallStarted,
    CallStartedData,
    Direction,
    DtmfReceived,
    DtmfReceivedData,
    Envelope,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.replay import (
    CallerInput,
    RecordedResult,
    SimulateCall,
    SimulationReply,
    TurnRecord,
    turns_from_events,
)
from voicebus.engines.base import LLMEngine, ToolSpec
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.call_watch import CallWatch
from voicebus.orchestrator.catalog import AgentCatalog
from voicebus.orchestrator.conversation import (
    CallServices,
    Conversation,
    ConversationSettings,
    ToolLookup,
)
from voicebus.orchestrator.session import MemorySessionStore
from voicebus.orchestrator.tools import CallTools, Tool, ToolError
from voicebus.runtime.rpc import NotFound

log = logging.getLogger(__name__)

SOURCE = "orchestrator/simulation"
_PROVIDER = "simulation"
_GATEWAY = "none"


class RecordedResults:
    """Results given back for tenant tools: exact arguments first (each once), then a
    result recorded for any arguments."""

    def __init__(self, results: Sequence[RecordedResult]) -> None:
        self._exact = [r for r in results if r.arguments is not None]
        self._any = {r.name: r for r in results if r.arguments is None}

    def take(self, name: str, arguments: Mapping[str, Any]) -> RecordedResult | None:
        """The result for this call (None: nothing was recorded for it)."""
        for i, found in enumerate(self._exact):
            if found.name == name and found.arguments == dict(arguments):
                return self._exact.pop(i)
        return self._any.get(name)


class HeldTool:
    """A tenant tool that is never called: it answers with a recorded result."""

    def __init__(self, inner: Tool, results: RecordedResults) -> None:
        self._inner = inner
        self._results = results
        self.spec: ToolSpec = inner.spec
        self.ends_call = inner.ends_call

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """The recorded result.

        Raises:
            ToolError: nothing recorded for these arguments, or the recorded call failed.
        """
        found = self._results.take(self.spec.name, arguments)
        if found is None:
            raise ToolError("not called in a simulation: no recorded result for these arguments")
        if not found.ok:
            raise ToolError(found.error or "failed")
        return found.result

    def reply(self, result: Any) -> str | None:
        """The tool's own spoken answer, as in a call."""
        return self._inner.reply(result)


class SimulationOutbox:
    """Keeps every event as ``(type, data)``; a hang-up or a transfer is kept as the
    ``call.ended`` it would lead to; every finished utterance counts as played."""

    source = SOURCE

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.conversation: Conversation | None = None

    async def control(self, command: ControlCommand) -> None:
        """Keep what the command means for the comparison."""
        if isinstance(command, HangUp):
            self.events.append(("call.ended.v1", {"reason": command.data.reason.value}))
        elif isinstance(command, Transfer):
            self.events.append(("call.ended.v1", {"reason": "transferred"}))
        elif isinstance(command, Say) and command.data.final and self.conversation is not None:
            c = self.conversation
            played = AgentSpeechStopped(
                tenant_id=c.session.tenant_id, call_id=c.call_id, source=SOURCE,
                data=AgentSpeechStoppedData(utterance_id=command.data.utterance_id, text="",
                                            played_ms=0),
            )  # fmt: skip
            await c.handle(played)

    async def publish(self, event: Envelope) -> None:
        """Keep the event."""
        dumped = event.model_dump(mode="json")
        self.events.append((str(dumped["type"]), dict(dumped.get("data") or {})))

    def given(self, caller: CallerInput) -> None:
        """Mark where an input was given (the next turn starts here)."""
        if caller.text is not None:
            self.events.append(("transcript.final.v1", {"text": caller.text}))
        else:
            self.events.append(("dtmf.received.v1", {"digits": caller.dtmf}))


class _NoClock(CallWatch):
    """No idle reprompts, no time limit."""

    def start(self) -> None:
        """Nothing to start."""

    def agent_done(self) -> None:
        """No idle clock."""


class Simulator:
    """Runs simulations with the orchestrator's agents and tenant tools.

    Args:
        catalog: compiled agents and their LLMs.
        tenant_tools: the tenant's tool definitions for a call (wrapped, never called).
        settings: the conversations' tunables.
    """

    def __init__(
        self, catalog: AgentCatalog, tenant_tools: ToolLookup, settings: ConversationSettings
    ) -> None:
        self._catalog = catalog
        self._tenant_tools = tenant_tools
        self._settings = settings

    async def run(self, request: SimulateCall) -> SimulationReply:
        """Run the request's inputs through its agent version.

        Raises:
            NotFound: no such agent for the tenant, or no such version.
        """
        found = await self._agent(request)
        agent, engine = found
        services = CallServices(agents=self._catalog.current, tools=self._tenant_tools,
                                node_engine=self._catalog.node_engine)  # fmt: skip
        log.info("simulation", extra={"agent_id": agent.id, "version": agent.version,
                                      "inputs": len(request.inputs),
                                      "replayed_call_id": request.call_id})  # fmt: skip
        turns = await simulate(agent, engine, services, self._settings, request)
        return SimulationReply(ok=True, agent_id=agent.id, version=agent.version, turns=turns)

    async def _agent(self, request: SimulateCall) -> tuple[Agent, LLMEngine]:
        row = await self._catalog.library.resolve(request.tenant_id, request.agent_id)
        if row is None or (row.archived and request.version is None):
            message = f"no agent {request.agent_id!r} for tenant {request.tenant_id!r}"
            raise NotFound(message, code="agent_not_found")
        version = request.version or row.version
        found = await self._catalog.version(row.owner, request.agent_id, version)
        if found is None:
            message = f"agent {request.agent_id!r} has no version {version}"
            raise NotFound(message, code="version_not_found")
        return found


async def simulate(
    agent: Agent,
    engine: LLMEngine,
    services: CallServices,
    settings: ConversationSettings,
    request: SimulateCall,
) -> list[TurnRecord]:
    """The turns of ``request``'s inputs run through ``agent`` (see the module).

    ``services.tools`` finds the tenant's tools; each is held back (:class:`HeldTool`).
    """
    results = RecordedResults(request.recorded)
    tenant_tools = services.tools

    async def held(agent: Agent, tenant_id: str, call_id: str) -> CallTools:
        real = await tenant_tools(agent, tenant_id, call_id)
        tools: list[Tool] = [HeldTool(t, results) for t in real.tools]
        return CallTools(tools=tools, problems=real.problems, connections=real.connections)

    services = replace(services, tools=held)
    outbox = SimulationOutbox()
    started = CallStarted(
        tenant_id=request.tenant_id, call_id=new_id(), source=SOURCE,
        data=CallStartedData(direction=Direction.INBOUND, provider=_PROVIDER, agent_id=agent.id,
                             context=request.context, gateway_instance=_GATEWAY),
    )  # fmt: skip
    conversation = Conversation(
        session=Conversation.new_session(started, agent),
        agent=agent,
        engine=engine,
        outbox=outbox,
        store=MemorySessionStore(),
        settings=settings,
        services=services,
    )
    conversation.watch = _NoClock(conversation)
    outbox.conversation = conversation
    try:
        await conversation.start()
        await conversation.idle()
        for caller in request.inputs:
            if conversation.session.ending:
                break  # the agent ended the call: later inputs have nobody to answer them
            outbox.given(caller)
            await conversation.handle(_input_event(started, caller))
            await conversation.idle()
    finally:
        await conversation.close()
    return turns_from_events(outbox.events)


def _input_event(started: CallStarted, caller: CallerInput) -> CallEvent:
    common: dict[str, Any] = {
        "tenant_id": started.tenant_id,
        "call_id": started.call_id,
        "source": SOURCE,
    }
    if caller.text is not None:
        data = TranscriptFinalData(utterance_id=f"u-{new_id()}", text=caller.text, start_ms=0,
                                   end_ms=0)  # fmt: skip
        return TranscriptFinal(**common, data=data)
    return DtmfReceived(**common, data=DtmfReceivedData(digits=caller.dtmf or ""))
