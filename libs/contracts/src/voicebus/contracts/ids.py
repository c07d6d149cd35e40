"""Sortable identifiers (UUIDv7, RFC 9562).

Event ids sort by creation time, so a replay or an audit query can order by id.
Python 3.11's ``uuid`` module has no ``uuid7``; this one keeps ids strictly
increasing within one process even inside one millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a new UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter, then random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= _counter << 64
        value |= 0b10 << 62
        value |= rand_b
    return uuid.UUID(int=value)


def new_id() -> str:
    """A new sortable id as a string, e.g. ``0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77``."""
    return str(uuid7())


def id_time_ms(value: str) -> int:
    """The Unix millisecond timestamp inside a UUIDv7 string."""
    return uuid.UUID(value).int >> 80


_DERIVED = uuid.UUID("6f1c2a9e-5b7d-4c3e-9a41-0d2b8e7f3c10")
"""Namespace of :func:`derived_id` (fixed: changing it would change every derived id)."""


def derived_id(*parts: str) -> str:
    """An id determined by ``parts`` (UUIDv5): the same fact stated twice gets one id.

    For an event that more than one service may publish, like a call's
    ``gateway_lost`` end: with ``Nats-Msg-Id`` equal to it, JetStream stores it once.
    Unlike :func:`new_id` it does not sort by time.
    """
    return str(uuid.uuid5(_DERIVED, "\x1f".join(parts)))
