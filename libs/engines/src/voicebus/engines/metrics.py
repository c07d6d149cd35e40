"""Prometheus metrics of engines and their fallback (process registry; bounded labels)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter

ENGINE_FAILURES: Final = Counter(
    "voicebus_engine_failures",
    "Engine requests that failed (kind: auth, timeout, closed, protocol, unavailable, ...).",
    ["role", "engine", "kind"],
)
FAILOVERS: Final = Counter(
    "voicebus_engine_failovers",
    "Work moved from an engine to the next of its role's fallback list.",
    ["role", "engine"],
)
BREAKER_SKIPS: Final = Counter(
    "voicebus_engine_breaker_skips",
    "Requests that skipped an engine because its circuit breaker was open.",
    ["role", "engine"],
)
