"""Exponential backoff with jitter, for redeliveries and retries. Pure."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

BASE_S: Final = 0.5
"""The first retry's delay (before jitter)."""
CAP_S: Final = 30.0
"""No retry waits longer: a 60 s database outage is caught up within this after it ends."""


def delay_s(
    attempt: int,
    *,
    base_s: float = BASE_S,
    cap_s: float = CAP_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """How long to wait before retry number ``attempt`` (1 = the first retry).

    "Equal jitter": half of ``min(cap, base * 2**(attempt-1))`` plus a random
    part up to the other half, so that consumers that failed together (a database
    outage) do not all come back at the same instant, yet none retries at once.

    Args:
        attempt: 1 for the first retry, 2 for the second, ...
        base_s: the first delay before jitter.
        cap_s: the longest delay.
        rand: a uniform random number in [0, 1) (tests pass a fixed one).
    """
    exponent = min(max(attempt, 1) - 1, 32)
    ceiling = min(cap_s, base_s * 2.0**exponent)
    return ceiling / 2 + ceiling / 2 * rand()
