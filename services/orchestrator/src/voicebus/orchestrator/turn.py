"""One agent turn: the LLM loop with tools, streamed as sentence chunks as tokens arrive.

The runner appends to the history as it goes (one assistant message per LLM
round, tagged with the utterance id, then the tool results), so a cancelled
turn leaves exactly what was spoken, and every tool call with a result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from voicebus.contracts.events import (
    CallError,
    CallErrorData,
    DncRequested,
    DncRequestedData,
    ErrorCode,
    ToolCalled,
    ToolCalledData,
    ToolResult,
    ToolResultData,
)
from voicebus.contracts.text import scrub, strip_control
from voicebus.engines.base import EngineError, LLMEngine, TextDelta, ToolCall
from voicebus.orchestrator import metrics
from voicebus.orchestrator.chunker import SentenceChunker, chunk_text
from voicebus.orchestrator.history import close_tool_calls
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.session import StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.tools import Toolbox
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnLimits:
    """Bounds of one turn.

    Attributes:
        llm_timeout_s: longest one LLM round may stream.
        max_tool_rounds: LLM rounds that may call tools before the reply must be text.
        clause_chars: chunker: a clause this long ends at its next comma.
        max_chars: chunker: a chunk with no break is cut at a space once this long.
    """

    llm_timeout_s: float = 30.0
    max_tool_rounds: int = 4
    clause_chars: int = 60
    max_chars: int = 240


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
    """How a turn ended."""

    ends_call: bool
    first_token_ms: float | None


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
    ) -> None:
        self._engine = engine
        self._toolbox = toolbox
        self._lines = lines
        self._outbox = outbox
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._limits = limits
        self._show_fixed = show_fixed_lines
        self.first_token_ms: float | None = None

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
        try:
            for round_no in range(self._limits.max_tool_rounds + 1):
                current = _Round()
                if not await self._generate(history, utterance, current, started):
                    break
                if current.calls and round_no == self._limits.max_tool_rounds:
                    log.warning("tool rounds exhausted", extra={"call_id": self._call_id})
                    current.calls.clear()
                if current.spoken or current.calls:
                    message = StoredMessage.assistant(current.text, utterance.id, current.calls)
                    history.append(message)
                current.recorded = True
                if not current.calls:
                    break
                ends_call, answers = await self._run_tools(current.calls, history)
                if answers and not ends_call:  # hanging up: the goodbye is the last word
                    await self._say_fixed(answers, history, utterance)
                if ends_call or answers:
                    break
            if not utterance.spoken and not ends_call:
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
        return TurnResult(ends_call=ends_call, first_token_ms=self.first_token_ms)

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
        self, history: list[StoredMessage], utterance: Utterance, current: _Round, started: float
    ) -> bool:
        """Stream one LLM round into the utterance. False if the engine failed."""
        chunker = SentenceChunker(self._limits.clause_chars, self._limits.max_chars)
        messages = [m.to_chat() for m in history if self._show_fixed or not m.fixed]
        try:
            async with asyncio.timeout(self._limits.llm_timeout_s):
                async for chunk in self._engine.stream(messages, self._toolbox.specs):
                    if self.first_token_ms is None:
                        self.first_token_ms = (time.monotonic() - started) * 1000
                        metrics.LLM_FIRST_TOKEN.observe(self.first_token_ms / 1000)
                    if isinstance(chunk, TextDelta):
                        for piece in chunker.push(chunk.text):
                            await utterance.say(piece)
                            current.spoken.append(piece)
                    else:
                        current.calls.append(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any engine failure: apologize and keep the call going
            await self._engine_failed(exc, history, utterance, current)
            return False
        for piece in chunker.flush():
            await utterance.say(piece)
            current.spoken.append(piece)
        return True

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
        self, calls: list[ToolCall], history: list[StoredMessage]
    ) -> tuple[bool, list[str]]:
        """Run the round's tool calls in order.

        Returns:
            Whether one of them ends the call, and the tools' own spoken answers.
        """
        ends_call = False
        answers: list[str] = []
        for call in calls:
            log.info(
                "tool called",
                extra={"call_id": self._call_id, "tool": call.name,
                       **pii(arguments=dict(call.arguments))},
            )  # fmt: skip
            await self._outbox.publish(
                ToolCalled(
                    tenant_id=self._tenant_id,
                    call_id=self._call_id,
                    source=self._outbox.source,
                    data=ToolCalledData(  # the LLM's choice: outside text
                        tool_call_id=call.id, name=call.name, arguments=scrub(dict(call.arguments))
                    ),
                )
            )
            outcome = await self._toolbox.run(call)
            metrics.TOOL_CALLS.labels(call.name, "ok" if outcome.ok else "error").inc()
            if (
                outcome.ok
                and isinstance(outcome.result, dict)
                and outcome.result.get("do_not_call")
            ):
                await self._outbox.publish(
                    DncRequested(
                        tenant_id=self._tenant_id,
                        call_id=self._call_id,
                        source=self._outbox.source,
                        data=DncRequestedData(reason="callee asked not to be called"),
                    )
                )
            await self._outbox.publish(
                ToolResult(
                    tenant_id=self._tenant_id,
                    call_id=self._call_id,
                    source=self._outbox.source,
                    data=ToolResultData(
                        tool_call_id=call.id,
                        name=call.name,
                        ok=outcome.ok,
                        result=scrub(outcome.result),  # a webhook's answer: outside text
                        error=strip_control(outcome.error) if outcome.error else outcome.error,
                        duration_ms=outcome.duration_ms,
                    ),
                )
            )
            history.append(
                StoredMessage(
                    role="tool",
                    content=outcome.message_content(),
                    tool_call_id=call.id,
                    name=call.name,
                )
            )
            ends_call = ends_call or outcome.ends_call
            if outcome.spoken:
                answers.append(outcome.spoken)
        return ends_call, answers
