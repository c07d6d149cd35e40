"""A call's stored events as the edge serves them (``GET /api/v1/calls/{id}/events``)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final

from voicebus.cli.edge import Edge
from voicebus.contracts.replay import TurnRecord, timed_turns

_PAGE: Final = 500

Event = dict[str, Any]


def events_of(edge: Edge, call_id: str) -> list[Event]:
    """Every stored event of the call, oldest first (all pages)."""
    events: list[Event] = []
    after: str | None = None
    while True:
        page = edge.json("GET", f"/calls/{call_id}/events", params={"limit": _PAGE, "after": after})
        events += page["events"]
        after = page.get("next_after")
        if after is None:
            return events


def ended_events(edge: Edge, call_id: str, timeout_s: float) -> list[Event] | None:
    """The call's events once its ``call.ended`` is stored; None if not within ``timeout_s``
    (audit stores events a moment after they happen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = events_of(edge, call_id)
        if any(e["type"].startswith("call.ended.") for e in events):
            return events
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def turns_of(events: list[Event]) -> list[TurnRecord]:
    """The conversation's turns, each with its latency."""
    return timed_turns([(e["type"], datetime.fromisoformat(e["time"]), e["data"]) for e in events])
