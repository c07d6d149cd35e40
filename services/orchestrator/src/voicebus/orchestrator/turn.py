"""One agent turn: the LLM loop with tools, streamed as sentence chunks as tokens arrive.

The runner appends to the history as it goes (one assistant message per LLM
round, tagged with the utterance id, then the tool results), so a cancelled
turn leaves exactly what was spoken, and every tool call with a result.

The loop: at most ``max_rounds`` LLM rounds per turn, and the last one is
offered no tools, so the model has to speak. A tool slower than
``slow_tool_s`` gets a short filler line first (spoken, so it is history: it
counts as heard). A call-control tool's action (transfer, keypad keys) and a
flow transition are carried out by the conversation through :class:`TurnHooks`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from opentelemetry import trace

from voicebus.contracts.commands import TransferData
from voicebus.contracts.events import CallError, CallErrorData, ErrorCode
from voicebus.engines.base import (
    ChatMessage,
    EngineError,
    LLMEngine,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from voicebus.orchestrator import metrics
from voicebus.orchestrator.chunker import SentenceChunker, chunk_text
from voicebus.orchestrator.history import close_tool_calls
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.session import StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.tool_events import CallIds, run_tool
from voicebus.orchestrator.tools import CallAction, Toolbox, ToolOutcome

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class TurnLimits:
    """Bounds of one turn.

    Attributes:
        llm_timeout_s: longest one LLM round may stream.
        max_rounds: LLM rounds per turn; the last one is offered no tools.
        clause_chars: chunker: a clause this long ends at its next comma.
        max_chars: chunker: a chunk with no break is cut at a space once this long.
        slow_tool_s: a tool still running after this gets the filler line first.
        slow_tool_line: the filler line (empty: none).
    """

    llm_timeout_s: float = 30.0
    max_rounds: int = 3
    clause_chars: int = 60
    max_chars: int = 240
    slow_tool_s: float = 0.7
    slow_tool_line: str = "One moment while I check that."


class Step(StrEnum):
    """What a flow transition means for the turn in progress."""

    CONTINUE = "continue"
    """Another LLM round, with the new node's prompt and tools."""
    STOP = "stop"
    """The turn ends here (the node waits for the caller, or another agent took over)."""
    END = "end"
    """A terminal node: the call ends after the goodbye."""


class TurnHooks(Protocol):
    """What the conversation does for the runner."""

    async def move(self, name: str, arguments: dict[str, object], utterance: Utterance) -> Step:
        """Carry out a flow transition the LLM called."""
        ...

    async def keys(self, digits: str) -> None:
        """Press keypad keys in the call."""
        ...

    def current_engine(self) -> LLMEngine:
        """The LLM to use now (a transition may have entered a node with its own options)."""
        ...


@dataclass(frozen=True, slots=True)
class AgentLines:
    """Fixed lines of the agent, already templated for the call."""

    goodbye: str
    fallback: str


@dataclass(slots=True)
class _Round:
    """One LLM round: what was spoken and which tools it asked for."""

    spoken: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    recorded: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.spoken)


@dataclass(frozen=True, slots=True)
class TurnResult:
    """How a turn ended.

    Attributes:
        ends_call: hang up once the utterance played.
        first_token_ms: transcript to first LLM token.
        transfer: transfer the caller once the utterance played.
        tokens: LLM tokens of every round, when the engine reported them.
    """

    ends_call: bool
    first_token_ms: float | None
    transfer: TransferData | None = None
    tokens: TokenUsage | None = None


class TurnRunner:
    """Runs the LLM loop of one turn for one call.

    Args:
        engine: the agent's LLM.
        toolbox: the agent's tools.
        lines: goodbye and fallback lines.
        outbox: where tool and error events go.
        tenant_id: the call's tenant.
        call_id: the call.
        limits: bounds.
        show_fixed_lines: show the LLM the lines it did not write (``StoredMessage.fixed``).
    """

    def __init__(
        self,
        *,
        engine: LLMEngine,
        toolbox: Toolbox,
        lines: AgentLines,
        outbox: Outbox,
        tenant_id: str,
        call_id: str,
        limits: TurnLimits,
        show_fixed_lines: bool = True,
        hooks: TurnHooks | None = None,
    ) -> None:
        self._engine = engine
        self._hooks = hooks
        self._ids = CallIds(tenant_id, call_id)
        self._filler_said = False
        self.transfer: TransferData | None = None
        self._toolbox = toolbox
        self._lines = lines
        self._outbox = outbox
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._limits = limits
        self._show_fixed = show_fixed_lines
        self.first_token_ms: float | None = None
        self.tokens: TokenUsage | None = None

    async def run(
        self, history: list[StoredMessage], utterance: Utterance, started: float
    ) -> TurnResult:
        """Answer the last user message; the utterance is finished on return.

        Args:
            history: the conversation, appended to in place.
            utterance: where the reply is spoken.
            started: ``time.monotonic()`` when the caller's transcript arrived.

        Raises:
            asyncio.CancelledError: the turn was cancelled; the history then holds
                what was spoken and every tool call has a result.
        """
        ends_call = False
        current = _Round()
        rounds = max(self._limits.max_rounds, 1)
        try:
            for round_no in range(rounds):
                current = _Round()
                tools = round_no < rounds - 1
                if not await self._generate(history, utterance, current, started, tools=tools):
                    break
                if current.calls and not tools:
                    log.warning("tool rounds exhausted", extra={"call_id": self._call_id})
                    current.calls.clear()
                if current.spoken or current.calls:
                    message = StoredMessage.assistant(current.text, utterance.id, current.calls)
                    history.append(message)
                current.recorded = True
                if not current.calls:
                    break
                step, answers = await self._run_tools(current.calls, history, utterance)
                ends_call = step is Step.END
                if answers and not ends_call:  # hanging up: the goodbye is the last word
                    await self._say_fixed(answers, history, utterance)
                if step is not Step.CONTINUE or answers or self.transfer is not None:
                    break
            if not utterance.spoken and not ends_call and self.transfer is None:
                log.warning("llm reply empty", extra={"call_id": self._call_id})
                metrics.LLM_EMPTY.inc()
                await self._say_fixed([self._lines.fallback], history, utterance)
            if ends_call and self._lines.goodbye:
                await self._say_fixed([self._lines.goodbye], history, utterance)
            await utterance.finish()
        except asyncio.CancelledError:
            if not current.recorded and current.spoken:
                history.append(StoredMessage.assistant(current.text, utterance.id))
            close_tool_calls(history)
            raise
        return TurnResult(ends_call, self.first_token_ms, self.transfer, self.tokens)

    async def _say_fixed(
        self, lines: list[str], history: list[StoredMessage], utterance: Utterance
    ) -> None:
        """Speak lines the LLM did not write (tools' answers, goodbye, fallback)."""
        pieces = [
            piece
            for line in lines
            for piece in chunk_text(line, self._limits.clause_chars, self._limits.max_chars)
        ]
        said: list[str] = []
        try:
            for piece in pieces:
                await utterance.say(piece)
                said.append(piece)
        finally:  # a cancelled turn keeps exactly what was said
            if said:
                history.append(StoredMessage.assistant(" ".join(said), utterance.id, fixed=True))

    async def _generate(
        self,
        history: list[StoredMessage],
        utterance: Utterance,
        current: _Round,
        started: float,
        *,
        tools: bool = True,
    ) -> bool:
        """Stream one LLM round into the utterance. False if the engine failed."""
        chunker = SentenceChunker(self._limits.clause_chars, self._limits.max_chars)
        messages = [m.to_chat() for m in history if self._show_fixed or not m.fixed]
        specs = self._toolbox.specs if tools else []
        span = tracer.start_span("llm", attributes={"voicebus.engine": self._engine.name})
        try:
            with trace.use_span(span, end_on_exit=True):
                await self._stream_round(
                    messages, specs, chunker, utterance, current, started, span
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any engine failure: apologize and keep the call going
            await self._engine_failed(exc, history, utterance, current)
            return False
        for piece in chunker.flush():
            await utterance.say(piece)
            current.spoken.append(piece)
        return True

    async def _stream_round(
        self,
        messages: list[ChatMessage],
        specs: list[ToolSpec],
        chunker: SentenceChunker,
        utterance: Utterance,
        current: _Round,
        started: float,
        span: trace.Span,
    ) -> None:
        """Stream one LLM round, speaking each sentence as it completes."""
        first = True
        async with asyncio.timeout(self._limits.llm_timeout_s):
            async for chunk in self._engine.stream(messages, specs):
                if first:
                    first = False
                    span.add_event("first_token")
                if self.first_token_ms is None:
                    self.first_token_ms = (time.monotonic() - started) * 1000
                    engine = self._engine.name
                    metrics.LLM_FIRST_TOKEN.labels(engine).observe(self.first_token_ms / 1000)
                if isinstance(chunk, TextDelta):
                    for piece in chunker.push(chunk.text):
                        await utterance.say(piece)
                        current.spoken.append(piece)
                elif isinstance(chunk, TokenUsage):
                    self._count(chunk)
                else:
                    current.calls.append(chunk)

    def _count(self, used: TokenUsage) -> None:
        before = self.tokens or TokenUsage(0, 0)
        self.tokens = TokenUsage(
            before.tokens_in + used.tokens_in, before.tokens_out + used.tokens_out
        )

    async def _engine_failed(
        self, exc: Exception, history: list[StoredMessage], utterance: Utterance, current: _Round
    ) -> None:
        retryable = isinstance(exc, TimeoutError) or (
            isinstance(exc, EngineError) and exc.retryable
        )
        message = "LLM timed out" if isinstance(exc, TimeoutError) else str(exc)[:2000]
        log.error(
            "llm failed",
            exc_info=not isinstance(exc, EngineError | TimeoutError),
            extra={"call_id": self._call_id, "error": type(exc).__name__},
        )
        metrics.LLM_ERRORS.inc()
        await self._outbox.publish(
            CallError(
                tenant_id=self._tenant_id,
                call_id=self._call_id,
                source=self._outbox.source,
                data=CallErrorData(
                    code=ErrorCode.ENGINE_ERROR,
                    message=message or type(exc).__name__,
                    retryable=retryable,
                    service="orchestrator",
                ),
            )
        )
        fallback = chunk_text(self._lines.fallback)
        for piece in fallback:
            await utterance.say(piece)
        current.spoken.extend(fallback)
        history.append(StoredMessage.assistant(current.text, utterance.id))
        current.recorded = True

    async def _run_tools(
        self, calls: list[ToolCall], history: list[StoredMessage], utterance: Utterance
    ) -> tuple[Step, list[str]]:
        """Run the round's tool calls in order, then carry out what they asked.

        Returns:
            How the turn goes on, and the tools' own spoken answers.
        """
        step = Step.CONTINUE
        answers: list[str] = []
        moves: list[CallAction] = []
        fillers: list[str] = []
        for call in calls:
            outcome = await self._timed(call, utterance, fillers)
            history.append(
                StoredMessage(role="tool", content=outcome.message_content(),
                              tool_call_id=call.id, name=call.name)
            )  # fmt: skip
            if outcome.ends_call:
                step = Step.END
            if outcome.spoken:
                answers.append(outcome.spoken)
            action = outcome.action
            if action is not None and action.transfer is not None:
                self.transfer = action.transfer
            if action is not None and action.dtmf is not None and self._hooks is not None:
                await self._hooks.keys(action.dtmf)
            if action is not None and action.move is not None:
                moves.append(action)
        if fillers:  # after the results: a tool message must follow its call
            history.append(StoredMessage.assistant(" ".join(fillers), utterance.id, fixed=True))
        # Transitions after every result is in the history (a reset keeps no half round).
        for action in moves[:1]:
            assert action.move is not None
            assert self._hooks is not None
            moved = await self._hooks.move(action.move[0], action.move[1], utterance)
            step = Step.END if Step.END in (step, moved) else moved
            self._engine = self._hooks.current_engine()
        return step, answers

    async def _timed(self, call: ToolCall, utterance: Utterance, fillers: list[str]) -> ToolOutcome:
        """Run one tool; if it is slow, say the filler line (once a turn) while it runs."""
        task = asyncio.create_task(run_tool(self._outbox, self._ids, self._toolbox, call))
        line = self._limits.slow_tool_line
        try:
            if line and not self._filler_said:
                done, _ = await asyncio.wait({task}, timeout=self._limits.slow_tool_s)
                if not done:
                    self._filler_said = True
                    for piece in chunk_text(
                        line, self._limits.clause_chars, self._limits.max_chars
                    ):
                        await utterance.say(piece)
                        fillers.append(piece)
            return await task
        except asyncio.CancelledError:
            task.cancel()
            raise
