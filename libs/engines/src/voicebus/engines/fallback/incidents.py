"""What fallback adapters report: engine errors and failovers, as plain values.

Services turn them into ``engine.error`` and ``engine.failover`` events; the
adapters also count them in Prometheus (labels bounded to role and engine name).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from voicebus.engines.base import EngineAuthError, EngineError
from voicebus.engines.metrics import ENGINE_FAILURES, FAILOVERS

log = logging.getLogger(__name__)

_MESSAGE_LIMIT: Final = 500


@dataclass(frozen=True, slots=True)
class EngineFailure:
    """An engine failed a request.

    Attributes:
        role: ``stt``, ``tts`` or ``llm``.
        engine: the engine's registered name.
        kind: bounded reason (``auth``, ``timeout``, ``closed``, ``protocol``...).
        message: what went wrong (no key, no caller text).
        retryable: whether the same engine may succeed later.
    """

    role: str
    engine: str
    kind: str
    message: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class Failover:
    """Work moved to the next engine of the role.

    Attributes:
        role: ``stt``, ``tts`` or ``llm``.
        from_engine: the engine that failed (or was skipped: breaker open).
        to_engine: the engine now doing the work.
        reason: the failure's kind, or ``breaker_open``.
        reissued: what was re-issued (``sentence``, ``turn``, ``audio``).
    """

    role: str
    from_engine: str
    to_engine: str
    reason: str
    reissued: str


Incident = EngineFailure | Failover
Reporter = Callable[[Incident], None]


def ignore(_incident: Incident) -> None:
    """A reporter that drops incidents (metrics are still counted)."""


def classify(role: str, engine: str, exc: BaseException) -> EngineFailure:
    """The failure an exception stands for (and count it)."""
    if isinstance(exc, EngineError):
        kind, retryable, message = exc.kind, exc.retryable, str(exc)
        if isinstance(exc, EngineAuthError):
            kind = "auth"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        kind, retryable, message = "timeout", True, f"{engine}: no answer within the budget"
    elif isinstance(exc, ConnectionError | OSError):
        kind, retryable, message = "closed", True, f"{engine}: connection failed or closed"
    else:
        kind, retryable = "failed", True
        message = f"{engine}: {type(exc).__name__}"
    ENGINE_FAILURES.labels(role, engine, kind).inc()
    log.warning("engine failed", extra={"role": role, "engine": engine, "kind": kind})
    return EngineFailure(role, engine, kind, message[:_MESSAGE_LIMIT], retryable)


def failover(role: str, from_engine: str, to_engine: str, reason: str, reissued: str) -> Failover:
    """A failover (and count it)."""
    FAILOVERS.labels(role, from_engine).inc()
    log.warning(
        "engine failover",
        extra={"role": role, "engine": from_engine, "to_engine": to_engine, "reason": reason},
    )
    return Failover(role, from_engine, to_engine, reason, reissued)
