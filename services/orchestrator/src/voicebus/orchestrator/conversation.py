"""The conversation of one call: greeting, turns, flow, keypad, interruptions, hang-up.

Events of the call arrive in order through :meth:`Conversation.handle` (one at
a time). A turn runs as a task, so an interruption or a newer transcript can
cancel it. Choices:

- a new transcript while a reply is still being generated **cancels** that
  reply (what was already spoken stays in the history, its utterance is closed
  with an empty final chunk) and answers the newer message with the whole
  history; nothing is queued;
- ``agent.speech.interrupted`` cancels the reply only if it is the utterance
  being generated, then trims that utterance in the history to ``text_heard``;
- keypad digits are collected whatever the agent is doing (never lost): in a
  collect-digits node they fill its variable, elsewhere a completed input is the
  caller's next message;
- ``end_call``, a terminal node, an idle hang-up or the call's time limit: the
  last line is spoken, then ``HangUp(after_playback=True)`` once media reports
  it played (or after a bound derived from its length); a transfer waits the same way;
- the session is saved (compare-and-set) after the greeting, each turn and each
  interruption; events already handled (by stream sequence) are skipped, so a
  takeover that replays the call's events answers each transcript once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from voicebus.contracts.commands import (
    ControlCommand,
    HangUp,
    HangUpData,
    SendDtmf,
    SendDtmfData,
    Transfer,
    TransferData,
)
from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    AgentSpeechInterrupted,
    AgentSpeechStopped,
    CallError,
    CallErrorData,
    CallEvent,
    CallStarted,
    DtmfReceived,
    EndReason,
    ErrorCode,
    SpeechUserStarted,
    SupervisionEnded,
    SupervisionHandedBack,
    SupervisionHumanSaid,
    SupervisionTakenOver,
    SupervisionWhispered,
    TranscriptFinal,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.redaction import redact
from voicebus.contracts.text import strip_control
from voicebus.engines.base import LLMEngine, Prefillable, TokenUsage
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.call_watch import CallWatch
from voicebus.orchestrator.chunker import chunk_text
from voicebus.orchestrator.errors import SessionConflictError
from voicebus.orchestrator.flow import FlowDriver
from voicebus.orchestrator.handoff import hand_over
from voicebus.orchestrator.history import bound, trim_to_heard
from voicebus.orchestrator.keypad import KeypadRules
from voicebus.orchestrator.keypad_input import KeypadInput
from voicebus.orchestrator.memory import caller_number
from voicebus.orchestrator.outbox import MaskingOutbox, Outbox
from voicebus.orchestrator.session import Session, SessionStorage, StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.supervision import supervise
from voicebus.orchestrator.tools import CallTools, Closable, Toolbox
from voicebus.orchestrator.turn import AgentLines, Step, TurnLimits, TurnResult, TurnRunner
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

OnLost = Callable[[str], Coroutine[Any, Any, None]]
Prelude = Callable[[Utterance], Awaitable[Step | None]]
AgentLookup = Callable[[str, str], Awaitable[tuple[Agent, LLMEngine] | None]]
NodeEngine = Callable[[Agent, str], LLMEngine | None]
ToolLookup = Callable[[Agent, str, str], Awaitable[CallTools]]
KnowledgeLookup = Callable[[Agent, str, str, str], Awaitable[str | None]]


async def _no_agents(tenant_id: str, agent_id: str) -> tuple[Agent, LLMEngine] | None:
    return None


async def _no_tools(agent: Agent, tenant_id: str, call_id: str) -> CallTools:
    return CallTools()


def _no_node_engine(agent: Agent, node_id: str) -> LLMEngine | None:
    return None


async def _no_knowledge(agent: Agent, tenant_id: str, call_id: str, query: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class CallServices:
    """What a conversation asks of the orchestrator: other agents (handoff), tenant tools,
    flow nodes' own LLM options, a caller turn's knowledge-base context."""

    agents: AgentLookup = _no_agents
    tools: ToolLookup = _no_tools
    node_engine: NodeEngine = _no_node_engine
    knowledge: KnowledgeLookup = _no_knowledge


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    """Tunables of every conversation.

    Attributes:
        limits: bounds of one turn.
        max_history_messages: messages kept after the system prompt.
        tool_timeout_s: longest a tool may run.
        hangup_wait_base_s: goodbye playback wait, fixed part.
        speech_chars_per_s: goodbye playback wait, per character spoken.
        hangup_wait_max_s: goodbye playback wait, upper bound.
        keypad: how keypad input is collected outside collect-digits nodes.
    """

    limits: TurnLimits = field(default_factory=TurnLimits)
    max_history_messages: int = 60
    tool_timeout_s: float = 10.0
    hangup_wait_base_s: float = 3.0
    speech_chars_per_s: float = 10.0
    hangup_wait_max_s: float = 20.0
    keypad: KeypadRules = field(default_factory=KeypadRules)

    def hangup_wait_s(self, text: str) -> float:
        """How long the goodbye may take to play before hanging up anyway."""
        wait = self.hangup_wait_base_s + len(text) / self.speech_chars_per_s
        return min(self.hangup_wait_max_s, wait)


class Conversation:
    """One call's conversation with its agent (another one after a handoff).

    Args:
        session: the state (new or loaded).
        agent: the call's agent version.
        engine: its LLM.
        outbox: where ``Say``/``HangUp`` and events go.
        store: where the session is saved.
        settings: tunables.
        services: other agents and the tenant's tools.
        revision: the session's stored revision (None: not stored yet).
        on_lost: called when another instance took the call over.
    """

    def __init__(
        self,
        *,
        session: Session,
        agent: Agent,
        engine: LLMEngine,
        outbox: Outbox,
        store: SessionStorage,
        settings: ConversationSettings,
        services: CallServices | None = None,
        revision: int | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        self.session = session
        self.services = services or CallServices()
        self._outbox: Outbox = MaskingOutbox(outbox, lambda: self.session.sensitive)
        self._store = store
        self._settings = settings
        self._revision = revision
        self._on_lost = on_lost
        self.flow = FlowDriver(self, self._outbox)
        self.watch = CallWatch(self)
        self.use_agent(agent, engine)
        self._save_lock = asyncio.Lock()
        self._turn: asyncio.Task[None] | None = None
        self._turn_state: tuple[str, Utterance, TurnRunner | None] | None = None
        self._hangup: asyncio.Task[None] | None = None
        self.keypad = KeypadInput(self, settings.keypad)
        self._played: collections.deque[str] = collections.deque(maxlen=16)
        self._played_changed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.last_utterance: str | None = None
        self._held: list[Closable] = []
        self.lost = False

    def use_agent(self, agent: Agent, engine: LLMEngine) -> None:
        """Talk as ``agent`` from now on (the call's first agent, or a handoff's)."""
        self.agent = agent
        self._agent_engine = self._engine = engine
        self._toolbox = Toolbox(agent.tools, self._settings.tool_timeout_s)
        values = {**self.session.context, **self.session.variables}
        self._lines = AgentLines(
            goodbye=agent.render("goodbye", values), fallback=agent.render("fallback_reply", values)
        )

    @property
    def toolbox(self) -> Toolbox:
        """The call's tools."""
        return self._toolbox

    @property
    def engine(self) -> LLMEngine:
        """The LLM answering now (the agent's, or the current flow node's own)."""
        return self._engine

    def current_engine(self) -> LLMEngine:
        """The LLM answering now (the turn's hook: a transition may change it)."""
        return self._engine

    def enter_node(self, node_id: str | None) -> None:
        """A flow node was entered: its own LLM options, if it has any, apply from now."""
        found = self.services.node_engine(self.agent, node_id) if node_id else None
        self._engine = found or self._agent_engine

    @property
    def outbox(self) -> Outbox:
        """Where commands and events go."""
        return self._outbox

    @classmethod
    def new_session(
        cls, event: CallStarted, agent: Agent, memory: Mapping[str, str] | None = None
    ) -> Session:
        """The state of a call just claimed: the system prompt templated with its context.

        Args:
            event: the call's start.
            agent: the agent it runs.
            memory: the caller memory's template values (agents that opt in); the
                call's own context wins over them.
        """
        context = {**(memory or {}), **event.data.context}
        prompt = agent.render("system_prompt", context)
        d = event.data
        # The number is kept (personal data) only for an agent that remembers callers.
        remembers = agent.spec.memory.enabled
        return Session(
            caller=caller_number(d.direction, d.from_number, d.to_number) if remembers else "",
            call_id=event.call_id,
            tenant_id=event.tenant_id,
            agent_id=agent.id,
            agent_owner=agent.owner,
            agent_version=agent.version,
            context=context,
            history=[StoredMessage(role="system", content=prompt)],
        )

    @property
    def call_id(self) -> str:
        """The call."""
        return self.session.call_id

    # -- lifecycle ------------------------------------------------------------

    async def prepare_tools(self) -> None:
        """Add the tenant's tools the agent names; report those it cannot have."""
        found = await self.services.tools(self.agent, self.session.tenant_id, self.call_id)
        self._toolbox.add(found.tools)
        self._held.extend(found.connections)
        for problem in found.problems:
            await self.report(ErrorCode.TOOL_ERROR, problem)
        self.flow.offer()

    async def start(self) -> None:
        """A new call: the greeting and the flow's first node, then save the session.

        While the greeting plays, an engine that supports it processes the system
        prompt and tool schemas (:meth:`_prefill`).
        """
        await self.prepare_tools()
        greeting = self.agent.render("greeting", self.session.context)
        if self.flow.flow is not None and not greeting:
            # A flow without a greeting: its first node speaks (a turn, so it can be cut).
            self._turn = asyncio.create_task(self._run_turn(time.monotonic(), self.flow.start))
        elif greeting or self.flow.flow is not None:
            utterance = self.utterance()
            limits = self._settings.limits
            chunks = chunk_text(greeting, limits.clause_chars, limits.max_chars)
            step = Step.STOP
            if self.flow.flow is None:
                await utterance.say_all(chunks)
                self.session.history.append(
                    StoredMessage.assistant(utterance.text, utterance.id, fixed=True)
                )
            else:
                await self.say_lines([greeting], utterance)
                step = await self.flow.start(utterance)
                await utterance.finish()
            await self._publish_reply(f"t-{new_id()}", utterance, None, complete=True, llm=False)
            self.last_utterance = utterance.id
            if step is Step.END:
                await self.end_after(utterance, self._lines.goodbye)
            else:  # the first node's prompt and tools are set: the next request starts so
                self._prefill()
        self.watch.start()
        await self.save()

    def _prefill(self) -> None:
        """Let an engine that supports it process the history the next request starts with.

        Runs in the background while the agent speaks (the greeting, or a reply), so the
        caller's next line waits only for its own tokens. Never blocks or fails a turn.
        """
        if not isinstance(self._engine, Prefillable):
            return
        show_fixed = self.agent.spec.llm.show_fixed_lines
        prompt = [m.to_chat() for m in self.session.history if show_fixed or not m.fixed]
        self.spawn(self._engine.prefill(prompt, self._toolbox.specs))

    async def resume(self) -> None:
        """A call taken over from another instance: same node, same tools, pending hang-up."""
        log.info("conversation resumed",
                 extra={"call_id": self.call_id, "turns": self.session.turns,
                        "node": self.session.flow_node})  # fmt: skip
        await self.prepare_tools()
        self.watch.start()
        if self.session.digits:
            self.keypad.arm()
        if self.session.ending:
            await self._send_hangup()

    async def close(self) -> None:
        """Stop everything running for this call (the state stays saved)."""
        me = asyncio.current_task()
        self.watch.stop()
        self.keypad.stop()
        candidates = (self._turn, self._hangup, *self._background)
        tasks = [t for t in candidates if t is not None and t is not me]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        held, self._held = self._held, []
        for item in held:
            await item.close()

    async def idle(self) -> None:
        """Wait until no turn or hang-up is running, including those started meanwhile
        (tests, graceful drains, simulations)."""
        while pending := [
            t for t in (self._turn, self._hangup, *self._background) if t and not t.done()
        ]:
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the background; it is cancelled with the call."""
        task = asyncio.create_task(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- events ---------------------------------------------------------------

    async def handle(self, event: CallEvent, seq: int = 0) -> None:
        """React to one of the call's events; ``seq`` is its VB_EVENTS sequence (0: unknown).

        Events at or below the last handled sequence are skipped (replays).
        """
        if seq:
            if seq <= self.session.last_seq:
                return
            self.session.last_seq = seq
        if self.lost:
            return
        match event:
            case TranscriptFinal():
                await self._on_transcript(event)
            case AgentSpeechInterrupted():
                await self._on_interrupted(event)
            case AgentSpeechStopped():
                self._mark_played(event.data.utterance_id)
            case DtmfReceived() if not event.data.masked:  # masked: the keys came on vb.keys
                await self.keypad.keys(event.data.digits)
            case SpeechUserStarted():
                self.watch.caller_active()
            case (
                SupervisionWhispered()
                | SupervisionTakenOver()
                | SupervisionHumanSaid()
                | SupervisionHandedBack()
                | SupervisionEnded()
            ):
                await supervise(self, event)
            case _:
                pass

    async def _on_transcript(self, event: TranscriptFinal) -> None:
        started = time.monotonic()
        text = event.data.text.strip()
        if not text or event.data.backchannel or self.session.ending:
            return  # a backchannel ("mhm" over the agent) is no turn and stays out of history
        self.watch.caller_active()
        log.info("caller turn", extra={"call_id": self.call_id, **pii(text=text)})
        await self.answer(text, started)

    async def answer(self, text: str, started: float) -> None:
        """The caller said (or keyed) ``text``: cancel the reply in progress, answer this.

        While a person holds the call, the line is only kept in the history.
        """
        if self.session.supervisor is not None:
            self.session.history.append(StoredMessage(role="user", content=text))
            await self.save()
            return
        await self._cancel_turn(close_utterance=True)
        self.session.history.append(StoredMessage(role="user", content=text))
        self.session.turns += 1
        self._turn = asyncio.create_task(
            self._run_turn(started, query=text), name=f"turn-{self.call_id}"
        )

    async def start_turn(self, started: float, prelude: Prelude | None = None) -> None:
        """Cancel the reply in progress and run a new turn (``prelude`` first, if any)."""
        await self._cancel_turn(close_utterance=True)
        self._turn = asyncio.create_task(self._run_turn(started, prelude))

    async def stop_agent(self) -> None:
        """Cancel the reply being generated (a person takes the call over)."""
        await self._cancel_turn(close_utterance=True)

    async def _on_interrupted(self, event: AgentSpeechInterrupted) -> None:
        data = event.data
        if self._turn_state is not None and self._turn_state[1].id == data.utterance_id:
            await self._cancel_turn(close_utterance=False)
        self._mark_played(data.utterance_id)
        if trim_to_heard(self.session.history, data.utterance_id, data.text_heard):
            log.info("reply trimmed to what was heard", extra={"call_id": self.call_id})
            await self.save()

    def _mark_played(self, utterance_id: str) -> None:
        self._played.append(utterance_id)
        self._played_changed.set()
        if self.session.supervisor is not None:
            return  # a person holds the call: no idle clock
        if utterance_id == self.last_utterance and (self._turn is None or self._turn.done()):
            self.watch.agent_done()

    # -- turns ----------------------------------------------------------------

    def utterance(self) -> Utterance:
        """A new utterance of the agent."""
        return Utterance(self._outbox, self.session.tenant_id, self.call_id,
                         allow_interruptions=self.agent.spec.turn.allow_interruptions,
                         speaker=lambda: self.agent.id)  # fmt: skip

    async def say_lines(self, lines: Sequence[str], utterance: Utterance) -> None:
        """Speak lines the LLM did not write; kept in the history as the agent's."""
        limits = self._settings.limits
        said: list[str] = []
        try:
            for line in lines:
                for piece in chunk_text(line, limits.clause_chars, limits.max_chars):
                    await utterance.say(piece)
                    said.append(piece)
        finally:
            if said:
                self.session.history.append(
                    StoredMessage.assistant(" ".join(said), utterance.id, fixed=True)
                )

    async def say_alone(self, line: str) -> Utterance:
        """Say one fixed line as its own utterance, reported as an ``agent.reply``."""
        utterance = self.utterance()
        await self.say_lines([line], utterance)
        await utterance.finish()
        await self._publish_reply(f"t-{new_id()}", utterance, None, complete=True, llm=False)
        self.last_utterance = utterance.id
        return utterance

    async def hand_over(self, node: Any, utterance: Utterance) -> Step:
        """A handoff node: another agent takes the call (see :mod:`.handoff`)."""
        return await hand_over(self, node, utterance)

    async def move(self, name: str, arguments: dict[str, object], utterance: Utterance) -> Step:
        """A transition the LLM called (the turn's hook)."""
        return await self.flow.move(name, dict(arguments), utterance)

    async def keys(self, digits: str) -> None:
        """Press keypad keys in the call (the turn's hook for ``send_dtmf``)."""
        await self.control(SendDtmf(tenant_id=self.session.tenant_id, call_id=self.call_id,
                                    source=self._outbox.source,
                                    data=SendDtmfData(digits=digits)))  # fmt: skip

    async def _run_turn(
        self, started: float, prelude: Prelude | None = None, query: str | None = None
    ) -> None:
        turn_id = f"t-{new_id()}"
        attributes = {"voicebus.call_id": self.call_id, "voicebus.turn_id": turn_id}
        with tracer.start_as_current_span("agent.turn", attributes=attributes):
            await self._turn_body(turn_id, started, prelude, query)

    async def _turn_body(
        self, turn_id: str, started: float, prelude: Prelude | None, query: str | None
    ) -> None:
        utterance = self.utterance()
        self.watch.agent_busy()
        self._turn_state = (turn_id, utterance, None)
        try:
            if query is not None:
                await self._add_knowledge(query)
            step = await prelude(utterance) if prelude is not None else Step.CONTINUE
            if step is Step.CONTINUE:
                runner = self._runner()
                self._turn_state = (turn_id, utterance, runner)
                result = await runner.run(self.session.history, utterance, started)
            else:
                await utterance.finish()
                result = TurnResult(step is Step.END, None)
        except Exception:  # a bug or a bus failure: this turn is lost, the call goes on
            log.exception("turn failed", extra={"call_id": self.call_id})
            self._turn_state = None
            metrics.TURNS.labels("failed").inc()
            await self._close_quietly(utterance)
            return
        self._turn_state = None
        metrics.TURNS.labels("complete").inc()
        self.last_utterance = utterance.id
        used_llm = prelude is None or result.first_token_ms is not None
        await self._publish_reply(
            turn_id, utterance, result.first_token_ms, complete=True, llm=used_llm,
            tokens=result.tokens,
        )  # fmt: skip
        if result.transfer is not None:
            self.session.ending = True
            self._hangup = asyncio.create_task(self._transfer_after(utterance, result.transfer))
        elif result.ends_call:
            await self.end_after(utterance, "")
        else:
            self._prefill()  # the next turn starts with this history
        await self.save()

    async def _add_knowledge(self, query: str) -> None:
        """Automatic context: the knowledge found for the caller's words, as a system
        message just before them (so the LLM reads it with this turn, and so does the
        history a takeover resumes from)."""
        found = await self.services.knowledge(
            self.agent, self.session.tenant_id, self.call_id, query
        )
        if found is not None:
            history = self.session.history
            at = len(history) - 1 if history and history[-1].role == "user" else len(history)
            history.insert(at, StoredMessage(role="system", content=found))

    def _runner(self) -> TurnRunner:
        return TurnRunner(
            engine=self._engine,
            toolbox=self._toolbox,
            lines=self._lines,
            outbox=self._outbox,
            tenant_id=self.session.tenant_id,
            call_id=self.call_id,
            limits=self._settings.limits,
            show_fixed_lines=self.agent.spec.llm.show_fixed_lines,
            hooks=self,
        )

    async def _close_quietly(self, utterance: Utterance) -> None:
        """Close a failed turn's utterance, so media does not wait for its end."""
        try:
            await utterance.finish()
        except Exception:  # the bus itself may be what failed; the next turn tries again
            log.exception("utterance not closed", extra={"call_id": self.call_id})

    async def _cancel_turn(self, *, close_utterance: bool) -> None:
        """Cancel the reply being generated; report what it had said."""
        task, state = self._turn, self._turn_state
        self._turn = self._turn_state = None
        if task is None or task.done():
            return
        if state is None:
            # The reply is complete; its task only reports and saves: let it finish.
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        turn_id, utterance, runner = state
        metrics.TURNS.labels("cancelled").inc()
        if close_utterance and utterance.started:
            await utterance.finish()
        first = runner.first_token_ms if runner is not None else None
        tokens = runner.tokens if runner is not None else None
        await self._publish_reply(turn_id, utterance, first, complete=False, tokens=tokens)

    async def _publish_reply(
        self,
        turn_id: str,
        utterance: Utterance,
        first_token_ms: float | None,
        *,
        complete: bool,
        llm: bool = True,
        tokens: TokenUsage | None = None,
    ) -> None:
        await self._outbox.publish(
            AgentReply(
                tenant_id=self.session.tenant_id,
                call_id=self.call_id,
                source=self._outbox.source,
                data=AgentReplyData(
                    turn_id=turn_id,
                    utterance_id=utterance.id,
                    # An LLM's output is outside text; it may repeat what the caller said.
                    text=redact(strip_control(utterance.text), self.agent.spec.redaction),
                    complete=complete,
                    llm_first_token_ms=first_token_ms,
                    engine=self._engine.name if llm else None,
                    agent_id=self.agent.id,
                    agent_version=self.agent.version,
                    node_id=self.session.flow_node,
                    llm_tokens_in=tokens.tokens_in if tokens else None,
                    llm_tokens_out=tokens.tokens_out if tokens else None,
                ),
            )
        )

    async def report(self, code: ErrorCode, message: str) -> None:
        """Publish a ``call.error`` for this call (no personal data in ``message``)."""
        await self._outbox.publish(
            CallError(tenant_id=self.session.tenant_id, call_id=self.call_id,
                      source=self._outbox.source,
                      data=CallErrorData(code=code, message=message[:2048],
                                         service="orchestrator"))
        )  # fmt: skip

    async def control(self, command: ControlCommand) -> None:
        """Send a control command of this call."""
        await self._outbox.control(command)

    # -- hang-up and transfer -----------------------------------------------------

    async def end_after(
        self, utterance: Utterance, line: str, reason: EndReason = EndReason.AGENT_HANGUP
    ) -> None:
        """Say ``line`` (if any, in a new utterance), then hang up once it played."""
        if self.session.ending:
            return
        self.session.ending = True
        self.watch.stop()
        if line:
            utterance = await self.say_alone(line)
        self._hangup = asyncio.create_task(self._hang_up_after(utterance, reason))

    async def _wait_played(self, utterance: Utterance) -> None:
        try:
            async with asyncio.timeout(self._settings.hangup_wait_s(utterance.text)):
                while utterance.started and utterance.id not in self._played:
                    self._played_changed.clear()
                    await self._played_changed.wait()
        except TimeoutError:
            log.warning("last line playback not confirmed", extra={"call_id": self.call_id})

    async def _hang_up_after(self, goodbye: Utterance, reason: EndReason) -> None:
        """Hang up once the goodbye has played (or after a bound)."""
        await self._wait_played(goodbye)
        await self._send_hangup(reason)

    async def _transfer_after(self, hold: Utterance, data: TransferData) -> None:
        """Transfer once the hold line has played (or after a bound)."""
        await self._wait_played(hold)
        log.info("transferring", extra={"call_id": self.call_id, "mode": data.mode.value})
        await self.control(Transfer(tenant_id=self.session.tenant_id, call_id=self.call_id,
                                    source=self._outbox.source, data=data))  # fmt: skip

    async def _send_hangup(self, reason: EndReason = EndReason.AGENT_HANGUP) -> None:
        log.info("hanging up", extra={"call_id": self.call_id, "reason": reason.value})
        await self.control(
            HangUp(
                tenant_id=self.session.tenant_id,
                call_id=self.call_id,
                source=self._outbox.source,
                data=HangUpData(reason=reason, after_playback=True),
            )
        )

    # -- state ------------------------------------------------------------------

    async def save(self) -> None:
        """Write the session (compare-and-set); a conflict means the call was taken over."""
        async with self._save_lock:
            if self.lost:
                return
            bound(self.session.history, self._settings.max_history_messages)
            try:
                self._revision = await self._store.save(self.session, self._revision)
            except SessionConflictError:
                self.lost = True
                log.warning("call taken over by another instance", extra={"call_id": self.call_id})
                if self._on_lost is not None:
                    self.spawn(self._on_lost(self.call_id))
