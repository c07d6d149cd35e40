"""Readiness conditions: each an async predicate, evaluated together with a time limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

__all__ = ["BUILTIN_CHECKS", "CHECK_TIMEOUT_S", "ReadinessCheck", "evaluate"]

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
"""An extra readiness condition; False, an exception or a timeout means not ready."""

CHECK_TIMEOUT_S: Final = 2.0
"""A readiness check slower than this counts as failing."""

BUILTIN_CHECKS: Final = frozenset({"started", "nats", "jetstream", "broker", "database"})
"""Conditions the service kit always evaluates (``database`` only when configured)."""


async def _run(name: str, check: ReadinessCheck, timeout_s: float) -> bool:
    try:
        return bool(await asyncio.wait_for(check(), timeout_s))
    except Exception as exc:
        log.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
        return False


async def evaluate(
    checks: Mapping[str, ReadinessCheck], timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, bool]:
    """Run every check concurrently.

    Args:
        checks: name → predicate.
        timeout_s: a check still running after this long counts as failing.

    Returns:
        name → passed; a check that raised or timed out is False (and logged).
    """
    names = list(checks)
    results = await asyncio.gather(*(_run(n, checks[n], timeout_s) for n in names))
    return dict(zip(names, results, strict=True))
