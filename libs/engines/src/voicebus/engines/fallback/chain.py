"""An ordered list of engines of one role, each behind its circuit breaker."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from voicebus.engines.fallback.breaker import BREAKERS, BreakerBoard, CircuitBreaker
from voicebus.engines.metrics import BREAKER_SKIPS

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Budgets:
    """How long an engine may take before the work moves to the next one.

    Attributes:
        first_audio_s: TTS: text sent → first audio.
        first_token_s: LLM: request → first token.
        final_transcript_s: STT: end of the turn → its final transcript.
        stall_s: TTS and LLM: longest silence between two pieces of one answer.
    """

    first_audio_s: float = 1.5
    first_token_s: float = 4.0
    final_transcript_s: float = 2.0
    stall_s: float = 3.0
    last_engine_s: float = 30.0
    """The last engine of a chain has nothing to fail over to: it gets this long instead
    (a late answer beats none)."""

    def limit(self, budget_s: float, *, last: bool) -> float:
        """The time limit for an engine: its budget, or ``last_engine_s`` for the last one."""
        return max(budget_s, self.last_engine_s) if last else budget_s


def endpoint(engine: object) -> str:
    """The breaker key of an engine: its endpoint (URL and key) when it has one, else its name."""
    value = getattr(engine, "endpoint", None)
    return value if isinstance(value, str) and value else str(getattr(engine, "name", "?"))


class Chain(Generic[E]):
    """The engines of one role in order, with the process's breakers.

    Args:
        role: ``stt``, ``tts`` or ``llm``.
        engines: in order of preference; at least one.
        board: the breakers (the process-wide board by default).
    """

    def __init__(self, role: str, engines: Sequence[E], board: BreakerBoard | None = None) -> None:
        if not engines:
            raise ValueError("a fallback chain needs at least one engine")
        self.role = role
        self.engines = list(engines)
        self._board = board or BREAKERS

    def breaker(self, engine: E) -> CircuitBreaker:
        """The breaker of one of the chain's engines."""
        return self._board.get(self.role, endpoint(engine))

    def name(self, engine: E) -> str:
        """The engine's registered name (the metrics label)."""
        return str(getattr(engine, "name", "?"))

    def is_last(self, index: int) -> bool:
        """Whether no engine comes after ``index``."""
        return index >= len(self.engines) - 1

    def candidates(self, start: int = 0) -> Iterator[tuple[int, E]]:
        """Engines from ``start`` on whose breaker lets a request through now.

        The last engine is always tried when every other one was skipped: a call
        with an open breaker everywhere still gets its best chance.
        """
        yielded = False
        for index in range(start, len(self.engines)):
            engine = self.engines[index]
            last = index == len(self.engines) - 1
            if self.breaker(engine).allow() or (last and not yielded):
                yielded = True
                yield index, engine
            else:
                BREAKER_SKIPS.labels(self.role, self.name(engine)).inc()
