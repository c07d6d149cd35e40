"""The conversation of one call: greeting, turns, interruptions, hang-up, saved state.

Events of the call arrive in order through :meth:`Conversation.handle` (one at
a time). A turn runs as a task, so an interruption or a newer transcript can
cancel it. Choices:

- a new transcript while a reply is still being generated **cancels** that
  reply (what was already spoken stays in the history, its utterance is closed
  with an empty final chunk) and answers the newer message with the whole
  history; nothing is queued;
- ``agent.speech.interrupted`` cancels the reply only if it is the utterance
  being generated, then trims that utterance in the history to ``text_heard``;
- ``end_call``: the goodbye is spoken, then ``HangUp(after_playback=True)`` is
  sent once media reports the goodbye played (``agent.speech.stopped`` or
  ``.interrupted``), or after a bound derived from its length;
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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from voicebus.contracts.commands import HangUp, HangUpData
from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    AgentSpeechInterrupted,
    AgentSpeechStopped,
    CallEvent,
    CallStarted,
    TranscriptFinal,
)
from voicebus.contracts.ids import new_id
from voicebus.engines.base import LLMEngine, Prefillable
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.chunker import chunk_text
from voicebus.orchestrator.errors import SessionConflictError
from voicebus.orchestrator.history import bound, trim_to_heard
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.session import Session, SessionStorage, StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.tools import Toolbox
from voicebus.orchestrator.turn import AgentLines, TurnLimits, TurnRunner
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)

OnLost = Callable[[str], Coroutine[Any, Any, None]]


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
    """

    limits: TurnLimits = field(default_factory=TurnLimits)
    max_history_messages: int = 60
    tool_timeout_s: float = 10.0
    hangup_wait_base_s: float = 3.0
    speech_chars_per_s: float = 10.0
    hangup_wait_max_s: float = 20.0

    def hangup_wait_s(self, text: str) -> float:
        """How long the goodbye may take to play before hanging up anyway."""
        wait = self.hangup_wait_base_s + len(text) / self.speech_chars_per_s
        return min(self.hangup_wait_max_s, wait)


class Conversation:
    """One call's conversation with one agent.

    Args:
        session: the state (new or loaded).
        agent: the call's agent.
        engine: its LLM.
        outbox: where ``Say``/``HangUp`` and events go.
        store: where the session is saved.
        settings: tunables.
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
        revision: int | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        self.session = session
        self.agent = agent
        self._engine = engine
        self._outbox = outbox
        self._store = store
        self._settings = settings
        self._revision = revision
        self._on_lost = on_lost
        self._toolbox = Toolbox(agent.tools, settings.tool_timeout_s)
        context = session.context
        self._lines = AgentLines(
            goodbye=agent.render("goodbye", context),
            fallback=agent.render("fallback_reply", context),
        )
        self._save_lock = asyncio.Lock()
        self._turn: asyncio.Task[None] | None = None
        self._turn_state: tuple[str, Utterance, TurnRunner] | None = None
        self._hangup: asyncio.Task[None] | None = None
        self._played: collections.deque[str] = collections.deque(maxlen=16)
        self._played_changed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.lost = False

    @classmethod
    def new_session(cls, event: CallStarted, agent: Agent) -> Session:
        """The state of a call just claimed: the system prompt templated with its context."""
        context = dict(event.data.context)
        prompt = agent.render("system_prompt", context)
        return Session(
            call_id=event.call_id,
            tenant_id=event.tenant_id,
            agent_id=agent.id,
            context=context,
            history=[StoredMessage(role="system", content=prompt)],
        )

    @property
    def call_id(self) -> str:
        """The call."""
        return self.session.call_id

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """A new call: speak the greeting, then save the session.

        While the greeting plays, an engine that supports it processes the system
        prompt and tool schemas (:meth:`_prefill`).
        """
        self._prefill()
        greeting = self.agent.render("greeting", self.session.context)
        if greeting:
            utterance = self._utterance()
            limits = self._settings.limits
            chunks = chunk_text(greeting, limits.clause_chars, limits.max_chars)
            await utterance.say_all(chunks)
            self.session.history.append(
                StoredMessage.assistant(utterance.text, utterance.id, fixed=True)
            )
            await self._publish_reply(f"t-{new_id()}", utterance, None, complete=True, llm=False)
        await self._save()

    def _prefill(self) -> None:
        """Let an engine that supports it process the history the next request starts with.

        Runs in the background while the agent speaks (the greeting, or a reply), so the
        caller's next line waits only for its own tokens. Never blocks or fails a turn.
        """
        if not isinstance(self._engine, Prefillable):
            return
        show_fixed = self.agent.spec.llm.show_fixed_lines
        prompt = [m.to_chat() for m in self.session.history if show_fixed or not m.fixed]
        task = asyncio.create_task(self._engine.prefill(prompt, self._toolbox.specs))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def resume(self) -> None:
        """A call taken over from another instance: finish a pending hang-up."""
        log.info(
            "conversation resumed", extra={"call_id": self.call_id, "turns": self.session.turns}
        )
        if self.session.ending:
            await self._send_hangup()

    async def close(self) -> None:
        """Stop everything running for this call (the state stays saved)."""
        me = asyncio.current_task()
        candidates = (self._turn, self._hangup, *self._background)
        tasks = [t for t in candidates if t is not None and t is not me]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until no turn or hang-up is running (tests, graceful drains)."""
        for task in (self._turn, self._hangup, *self._background):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

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
            case _:
                pass

    async def _on_transcript(self, event: TranscriptFinal) -> None:
        started = time.monotonic()
        text = event.data.text.strip()
        if not text or event.data.backchannel or self.session.ending:
            return  # a backchannel ("mhm" over the agent) is no turn and stays out of history
        await self._cancel_turn(close_utterance=True)
        log.info("caller turn", extra={"call_id": self.call_id, **pii(text=text)})
        self.session.history.append(StoredMessage(role="user", content=text))
        self.session.turns += 1
        self._turn = asyncio.create_task(self._run_turn(started), name=f"turn-{self.call_id}")

    async def _on_interrupted(self, event: AgentSpeechInterrupted) -> None:
        data = event.data
        if self._turn_state is not None and self._turn_state[1].id == data.utterance_id:
            await self._cancel_turn(close_utterance=False)
        self._mark_played(data.utterance_id)
        if trim_to_heard(self.session.history, data.utterance_id, data.text_heard):
            log.info("reply trimmed to what was heard", extra={"call_id": self.call_id})
            await self._save()

    def _mark_played(self, utterance_id: str) -> None:
        self._played.append(utterance_id)
        self._played_changed.set()

    # -- turns ----------------------------------------------------------------

    def _utterance(self) -> Utterance:
        return Utterance(
            self._outbox,
            self.session.tenant_id,
            self.call_id,
            allow_interruptions=self.agent.spec.turn.allow_interruptions,
        )

    async def _run_turn(self, started: float) -> None:
        turn_id = f"t-{new_id()}"
        utterance = self._utterance()
        runner = TurnRunner(
            engine=self._engine,
            toolbox=self._toolbox,
            lines=self._lines,
            outbox=self._outbox,
            tenant_id=self.session.tenant_id,
            call_id=self.call_id,
            limits=self._settings.limits,
            show_fixed_lines=self.agent.spec.llm.show_fixed_lines,
        )
        self._turn_state = (turn_id, utterance, runner)
        try:
            result = await runner.run(self.session.history, utterance, started)
        except Exception:  # a bug or a bus failure: this turn is lost, the call goes on
            log.exception("turn failed", extra={"call_id": self.call_id})
            self._turn_state = None
            metrics.TURNS.labels("failed").inc()
            await self._close_quietly(utterance)
            return
        self._turn_state = None
        metrics.TURNS.labels("complete").inc()
        await self._publish_reply(turn_id, utterance, result.first_token_ms, complete=True)
        if result.ends_call:
            self.session.ending = True
            self._hangup = asyncio.create_task(self._hang_up_after(utterance))
        else:
            self._prefill()  # the next turn starts with this history
        await self._save()

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
        await self._publish_reply(turn_id, utterance, runner.first_token_ms, complete=False)

    async def _publish_reply(
        self,
        turn_id: str,
        utterance: Utterance,
        first_token_ms: float | None,
        *,
        complete: bool,
        llm: bool = True,
    ) -> None:
        await self._outbox.publish(
            AgentReply(
                tenant_id=self.session.tenant_id,
                call_id=self.call_id,
                source=self._outbox.source,
                data=AgentReplyData(
                    turn_id=turn_id,
                    utterance_id=utterance.id,
                    text=utterance.text,
                    complete=complete,
                    llm_first_token_ms=first_token_ms,
                    engine=self._engine.name if llm else None,
                ),
            )
        )

    # -- hang-up ----------------------------------------------------------------

    async def _hang_up_after(self, goodbye: Utterance) -> None:
        """Hang up once the goodbye has played (or after a bound)."""
        try:
            async with asyncio.timeout(self._settings.hangup_wait_s(goodbye.text)):
                while goodbye.id not in self._played:
                    self._played_changed.clear()
                    await self._played_changed.wait()
        except TimeoutError:
            log.warning(
                "goodbye playback not confirmed; hanging up", extra={"call_id": self.call_id}
            )
        await self._send_hangup()

    async def _send_hangup(self) -> None:
        log.info("hanging up", extra={"call_id": self.call_id})
        await self._outbox.control(
            HangUp(
                tenant_id=self.session.tenant_id,
                call_id=self.call_id,
                source=self._outbox.source,
                data=HangUpData(after_playback=True),
            )
        )

    # -- state ------------------------------------------------------------------

    async def _save(self) -> None:
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
                    task = asyncio.create_task(self._on_lost(self.call_id))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
