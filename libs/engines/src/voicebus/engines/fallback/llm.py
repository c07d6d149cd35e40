"""LLM over an ordered list of engines: a failed or late turn is re-issued on the next.

No first token within ``first_token_s``, a gap longer than ``stall_s``, an error
or a closed connection moves the turn to the next engine with the same messages
and tools. When the failed engine had already streamed text, that text was
spoken: the next engine's reply is then asked to continue it (the spoken part is
given as the start of the assistant's message), and a reply that repeats it is
trimmed. A stream that already produced a tool call is not re-issued (the tool
may have side effects): its failure is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from voicebus.engines.base import (
    ChatMessage,
    EngineAuthError,
    EngineError,
    LLMChunk,
    LLMEngine,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from voicebus.engines.fallback.chain import Budgets, Chain
from voicebus.engines.fallback.incidents import Reporter, classify, failover, ignore

ROLE = "llm"


class FallbackLLM:
    """An :class:`LLMEngine` over several LLM engines.

    Args:
        engines: in order of preference.
        budgets: time limits per engine.
        report: receives engine failures and failovers (events).
        chain: the engines with their breakers (built from ``engines`` by default).
    """

    def __init__(
        self,
        engines: Sequence[LLMEngine],
        *,
        budgets: Budgets | None = None,
        report: Reporter = ignore,
        chain: Chain[LLMEngine] | None = None,
    ) -> None:
        self._chain = chain or Chain(ROLE, engines)
        self._budgets = budgets or Budgets()
        self._report = report
        self.name = self._chain.name(self._chain.engines[0])
        """The engine that answered last (the first one until then)."""

    @property
    def engines(self) -> list[LLMEngine]:
        """The engines, in order."""
        return self._chain.engines

    def with_reporter(self, report: Reporter) -> FallbackLLM:
        """The same engines and breakers, reporting to ``report`` (one per call)."""
        return FallbackLLM(self.engines, budgets=self._budgets, report=report, chain=self._chain)

    async def aclose(self) -> None:
        """Close engines that hold connections."""
        for engine in self.engines:
            close = getattr(engine, "aclose", None)
            if close is not None:
                await close()

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Yield the reply of the first engine that delivers it.

        Raises:
            EngineError: every engine failed, or one failed after calling a tool.
        """
        spoken = ""  # text already yielded (and so already on its way to the caller)
        previous: str | None = None
        last_kind = "failed"
        last_error: EngineError | None = None
        for index, engine in self._chain.candidates():
            last = self._chain.is_last(index)
            name = self._chain.name(engine)
            if previous is not None:
                self._report(failover(ROLE, previous, name, last_kind, "turn"))
            asked = list(messages)
            if spoken:
                asked.append(ChatMessage("assistant", spoken))
            stream = engine.stream(asked, tools)
            breaker = self._chain.breaker(engine)
            echo = _Echo(spoken)
            called_tool = False
            try:
                timeout = self._budgets.limit(self._budgets.first_token_s, last=last)
                while True:
                    try:
                        async with asyncio.timeout(timeout):
                            chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                    timeout = self._budgets.limit(self._budgets.stall_s, last=last)
                    self.name = name  # the engine answering now (reply events name it)
                    if isinstance(chunk, TextDelta):
                        text = echo.trim(chunk.text)
                        if not text:
                            continue
                        spoken += text
                        yield TextDelta(text)
                    else:
                        called_tool = called_tool or isinstance(chunk, ToolCall)
                        yield chunk
            except (EngineError, TimeoutError, OSError) as exc:
                failure = classify(ROLE, name, exc)
                breaker.failure(auth=isinstance(exc, EngineAuthError))
                self._report(failure)
                last_error = exc if isinstance(exc, EngineError) else EngineError(failure.message)
                if called_tool:
                    raise last_error from exc
                last_kind, previous = failure.kind, name
                continue
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]  # async generators
            breaker.success()
            return
        raise last_error or EngineError("llm: no engine available", kind="unavailable")


class _Echo:
    """Drops the start of a re-issued reply that repeats what was already spoken."""

    def __init__(self, spoken: str) -> None:
        self._expected = " ".join(spoken.split())
        self._seen = ""
        self._checking = bool(self._expected)
        self._ends_with_space = spoken[-1:].isspace()

    def trim(self, text: str) -> str:
        if not self._checking:
            return text
        self._seen += text
        normal = " ".join(self._seen.split())
        if self._expected.startswith(normal):
            return ""  # still inside the repeat
        self._checking = False
        if normal.startswith(self._expected):
            # Cut after the repeated words, keeping the separator that follows them.
            cut = _position_after_words(self._seen, len(self._expected.split()))
            rest = self._seen[cut:]
            return rest.lstrip() if self._ends_with_space else rest
        return self._seen


def _position_after_words(text: str, words: int) -> int:
    """Index in ``text`` just after its first ``words`` whitespace-separated words."""
    position = 0
    for _ in range(words):
        while position < len(text) and text[position].isspace():
            position += 1
        while position < len(text) and not text[position].isspace():
            position += 1
    return position
