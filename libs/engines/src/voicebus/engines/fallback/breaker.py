"""Circuit breakers, one per engine endpoint, shared by every call of a process.

Pure: the clock is passed in. A breaker is *closed* (requests go through) until
``failures`` failures fall within ``window_s``; it then *opens* for ``open_s``
(requests skip the engine at once), after which it is *half-open*: one request
probes the engine; success closes the breaker, failure opens it again. An
authentication failure opens it at once for ``auth_open_s`` (a refused key will
not start working by itself: no retry storm against the vendor).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from threading import Lock


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """How a breaker trips and recovers.

    Attributes:
        failures: failures within ``window_s`` that open the breaker.
        window_s: the window failures are counted in.
        open_s: how long an opened breaker stays open before a probe.
        auth_open_s: how long an authentication failure keeps it open.
    """

    failures: int = 3
    window_s: float = 30.0
    open_s: float = 15.0
    auth_open_s: float = 300.0


class CircuitBreaker:
    """One engine endpoint's breaker.

    Args:
        settings: thresholds.
        clock: seconds of a monotonic clock.
    """

    def __init__(
        self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._failures: deque[float] = deque()
        self._state = BreakerState.CLOSED
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker past its time is half-open)."""
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._state = BreakerState.HALF_OPEN
            self._probing = False
        return self._state

    def allow(self) -> bool:
        """Whether a request may go to the engine now (claims the probe when half-open)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        """The request succeeded: a probe closes the breaker."""
        if self._state is not BreakerState.CLOSED:
            self._state = BreakerState.CLOSED
            self._failures.clear()
        self._probing = False

    def failure(self, *, auth: bool = False) -> None:
        """The request failed; an auth failure or a failed probe opens the breaker."""
        now = self._clock()
        if auth:
            self._open(now, self.settings.auth_open_s)
            return
        if self._state is BreakerState.HALF_OPEN:
            self._open(now, self.settings.open_s)
            return
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.settings.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.settings.failures:
            self._open(now, self.settings.open_s)

    def _open(self, now: float, seconds: float) -> None:
        self._state = BreakerState.OPEN
        self._open_until = max(self._open_until, now + seconds)
        self._probing = False
        self._failures.clear()


class BreakerBoard:
    """The process's breakers by ``(role, endpoint)``, created on first use.

    Args:
        settings: thresholds for new breakers.
        clock: seconds of a monotonic clock.
    """

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._lock = Lock()

    def get(self, role: str, endpoint: str) -> CircuitBreaker:
        """The breaker of one engine endpoint of a role."""
        key = (role, endpoint)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(self.settings, self._clock)
            return breaker

    def clear(self) -> None:
        """Forget every breaker (tests)."""
        with self._lock:
            self._breakers.clear()


BREAKERS = BreakerBoard()
"""The process-wide board every call's fallback adapters share."""
