"""Rate limits in this process's memory: a moving window per key.

Per-key API limits and tenants' calls per minute are shared by every edge instance
(:mod:`voicebus.edge.api.shared_limits`, NATS KV), falling back to this when NATS
cannot be asked. Guess limits and per-address limits stay per instance: they bound
what one instance spends on a flood.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request


class KeyRateLimiter:
    """Counts requests per key over a moving one-minute window."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def hit(self, key: str, per_minute: int) -> float | None:
        """Count one request of ``key``; None if allowed, else seconds until one would be."""
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        if self._limiter.hit(item, key):
            return None
        reset = self._limiter.get_window_stats(item, key).reset_time
        return max(reset - time.time(), 1.0)

    def exceeded(self, key: str, per_minute: int) -> bool:
        """Whether ``key`` has used up its window, without counting a request."""
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return not self._limiter.test(item, key)

    @staticmethod
    def retry_after(seconds: float) -> str:
        """``Retry-After`` value: whole seconds, rounded up."""
        return str(math.ceil(seconds))


def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy: the proxy's, unless the
    server is told to trust forwarded headers)."""
    return request.client.host if request.client is not None else "unknown"


class ClientLimiter:
    """Requests without a valid key, counted per client address over a moving minute.

    Args:
        per_minute: how many one address may make.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._limiter = KeyRateLimiter()

    def hit(self, request: Request) -> float | None:
        """Count one; None if allowed, else seconds until one would be."""
        return self._limiter.hit(f"ip:{client_address(request)}", self.per_minute)

    def exceeded(self, request: Request) -> bool:
        """Whether the address has used up its minute, without counting."""
        return self._limiter.exceeded(f"ip:{client_address(request)}", self.per_minute)
