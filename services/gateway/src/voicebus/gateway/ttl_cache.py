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

    An expired entry is kept ``stale_s`` seconds more for :meth:`get_stale` (a fallback
    when the source of truth cannot be asked), then dropped.

    Args:
        ttl_s: how long an entry is served after it was stored.
        max_entries: how many entries at most.
        clock: monotonic seconds (``time.monotonic``; a fake in tests).
        stale_s: how long past its TTL an entry is still kept for :meth:`get_stale`.
    """

    def __init__(
        self, ttl_s: float, max_entries: int, clock: Callable[[], float], stale_s: float = 0.0
    ) -> None:
        if ttl_s < 0 or max_entries < 1 or stale_s < 0:
            raise ValueError("a cache needs ttl_s >= 0, stale_s >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self.max_entries = max_entries
        self._clock = clock
        # key → (stored at, value), in the order stored: the oldest first.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` while ``key``'s entry is fresh, else ``(False, None)``."""
        self._drop_dead()
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[0] + self.ttl_s:
            return False, None
        return True, entry[1]

    def get_stale(self, key: K) -> tuple[bool, V | None, float]:
        """``(True, value, age_s)`` while ``key``'s entry is fresh or at most ``stale_s``
        past its TTL, else ``(False, None, 0.0)``."""
        self._drop_dead()
        entry = self._entries.get(key)
        if entry is None:
            return False, None, 0.0
        return True, entry[1], self._clock() - entry[0]

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` from now (replacing any older entry)."""
        self._entries.pop(key, None)
        self._drop_dead()
        while len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[key] = (self._clock(), value)

    def discard(self, key: K) -> None:
        """Forget ``key`` (nothing happens if it is not there)."""
        self._entries.pop(key, None)

    def _drop_dead(self) -> None:
        """Drop the entries past TTL and stale time (the oldest are first: all live as long)."""
        dead_before = self._clock() - self.ttl_s - self.stale_s
        while self._entries:
            stored_at = next(iter(self._entries.values()))[0]
            if stored_at > dead_before:
                break
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        """Entries held, fresh or stale."""
        return len(self._entries)
