"""A small cache whose entries expire, bounded in size. Pure: the clock is passed in."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values kept for ``ttl_s`` seconds; at most ``max_entries``, the least recently stored
    going first when full.

    Args:
        ttl_s: how long an entry is served after it was stored.
        max_entries: how many entries at most.
        clock: monotonic seconds (``time.monotonic``; a fake in tests).
    """

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("a cache needs ttl_s >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` while ``key``'s entry is fresh, else ``(False, None)``."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` from now (replacing any older entry)."""
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[key] = (self._clock() + self.ttl_s, value)

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing happens if it is not there)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        return len(self._entries)
