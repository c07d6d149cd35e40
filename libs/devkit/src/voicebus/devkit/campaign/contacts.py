"""Generated contacts for campaign tests and the benchmark, and a wait helper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers

MONDAY_14_UTC = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
"""New York 09:00, Los Angeles 06:00, Boise 07:00, London 14:00, Tokyo 23:00."""

AREAS = {
    "ny": ("+1212", 7),
    "la": ("+1415", 7),
    "idaho": ("+1208", 7),  # Boise and Los Angeles: two zones
    "london": ("+44207", 7),
    "tokyo": ("+813", 8),
}


@dataclass(frozen=True)
class Person:
    """A generated contact."""

    area: str
    number: str


def people(count: int, seed: int = 7) -> list[Person]:
    """``count`` valid, distinct numbers spread over the areas, last digits cycling 0-9."""
    out: list[Person] = []
    seen: set[str] = set()
    areas = list(AREAS)
    n = seed * 7919
    while len(out) < count:
        area = areas[len(out) % len(areas)]
        prefix, digits = AREAS[area]
        n += 104729
        body = f"{(n % 10 ** (digits - 1)):0{digits - 1}d}"
        body = str(2 + n % 8) + body[1:]
        number = prefix + body[: digits - 1] + str(len(out) // len(areas) % 10)
        if number in seen or not phonenumbers.is_valid_number(phonenumbers.parse(number)):
            continue
        seen.add(number)
        out.append(Person(area, number))
    return out


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Poll ``check`` until it is true, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
