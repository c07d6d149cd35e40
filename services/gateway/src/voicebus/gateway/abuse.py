"""Counting what unauthenticated senders do, per source and minute. Pure: a clock is given.

A forged or replayed webhook costs a signature check and, before this, one stored
``call.error`` event each: a flood of them filled ``VB_EVENTS`` and audit. Now the
first refusal per source and minute is recorded (the rest are counted in a
metric), and a source over its limit of refusals is answered 429 without a check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

WINDOW_S: Final = 60.0
MAX_SOURCES: Final = 100_000


class PerMinute:
    """Counts per key in fixed one-minute windows, forgetting old windows.

    Args:
        clock: seconds, monotonic.
        max_sources: keys kept before the oldest window's are dropped all at once.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_sources: int = MAX_SOURCES
    ) -> None:
        self._clock = clock
        self._max = max_sources
        self._window = -1
        self._counts: dict[str, int] = {}

    def _roll(self) -> None:
        window = int(self._clock() // WINDOW_S)
        if window != self._window or len(self._counts) >= self._max:
            self._window = window
            self._counts = {}

    def hit(self, key: str) -> int:
        """Count one for ``key``; its count in this minute, this one included."""
        self._roll()
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    def count(self, key: str) -> int:
        """``key``'s count in this minute."""
        self._roll()
        return self._counts.get(key, 0)
