"""Per-key rate limits shared by every edge instance: counters in NATS KV.

One key per limited key and minute (``<digest>.<minute>`` in ``vb_rate_limits``),
incremented with optimistic concurrency (create, or update at the revision read;
a lost race reads again), so N instances behind a balancer enforce one limit.
Fixed one-minute windows: up to twice the limit can pass around a window's edge,
the price of one small counter per key. If NATS cannot be asked, the instance's
own moving window decides (a limit per instance rather than none).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Final

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from voicebus.contracts.streams import RATE_LIMITS
from voicebus.edge.api.ratelimit import KeyRateLimiter
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

WINDOW_S: Final = 60
_RACES: Final = 8


def counter_key(key: str, window: int) -> str:
    """The bucket key of ``key``'s counter in minute ``window``."""
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.{window}"


class SharedRateLimiter:
    """Counts requests per key and minute in the ``vb_rate_limits`` bucket.

    Args:
        clock: Unix seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._kv: KeyValue | None = None
        self._clock = clock
        self._local = KeyRateLimiter()

    async def open(self, service: Service) -> None:
        """Connected hook: use the service's bucket."""
        self._kv = await service.js.key_value(RATE_LIMITS.bucket)

    async def hit(self, key: str, per_minute: int) -> float | None:
        """Count one request of ``key``; None if allowed, else seconds until one would be."""
        if self._kv is None:
            return self._local.hit(key, per_minute)
        now = self._clock()
        window = int(now // WINDOW_S)
        wait = max(WINDOW_S - (now % WINDOW_S), 1.0)
        name = counter_key(key, window)
        try:
            for _ in range(_RACES):
                try:
                    entry = await self._kv.get(name)
                except KeyNotFoundError:
                    try:
                        await self._kv.create(name, b"1")
                    except KeyWrongLastSequenceError:
                        continue  # another instance created it first: read it
                    return None
                count = int(entry.value or b"0")
                if count >= per_minute:
                    return wait
                try:
                    await self._kv.update(name, str(count + 1).encode(), last=entry.revision)
                except KeyWrongLastSequenceError:
                    continue
                return None
        except (NatsError, TimeoutError, ValueError) as err:
            log.warning("shared rate limit unavailable", extra={"error": type(err).__name__})
            return self._local.hit(key, per_minute)
        return wait  # lost every race: this key is being hammered
