"""When a failed delivery is tried again, and when it is given up. Pure.

Exponential backoff with equal jitter (the runtime kit's): ``base, 2·base, 4·base, …``
capped at ``cap``, each between half and all of that. With the defaults (30 s, capped at
one hour, 16 attempts) a delivery is retried for about six hours before it becomes a
dead letter; tests configure seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from voicebus.runtime import backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry schedule of deliveries.

    Attributes:
        max_attempts: attempts before a delivery is a dead letter (the first included).
        base_s: delay before the first retry, before jitter.
        cap_s: the longest delay.
    """

    max_attempts: int
    base_s: float
    cap_s: float

    def delay_s(self, failed_attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the ``failed_attempts``-th failed attempt."""
        return backoff.delay_s(failed_attempts, base_s=self.base_s, cap_s=self.cap_s, rand=rand)

    def gives_up(self, attempts: int, budget: int) -> bool:
        """Whether ``attempts`` used up a delivery's ``budget`` of attempts."""
        return attempts >= budget
