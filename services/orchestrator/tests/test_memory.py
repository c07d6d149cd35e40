"""Caller memory, the pure part: whose number, how a call updates the profile, the prompt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voicebus.contracts.events import Direction
from voicebus.orchestrator.analysis import CallerNotes
from voicebus.orchestrator.memory import (
    InMemoryCallerMemory,
    Profile,
    caller_number,
    remember,
    template_values,
)

pytestmark = pytest.mark.unit

DAY1 = datetime(2026, 12, 1, 10, tzinfo=UTC)
DAY2 = datetime(2026, 12, 2, 10, tzinfo=UTC)


def test_the_caller_is_who_called_in_or_who_was_called() -> None:
    assert caller_number(Direction.INBOUND, "+1 415 555 0100", "+14155550199") == "+14155550100"
    assert caller_number(Direction.OUTBOUND, "+14155550199", "+14155550100") == "+14155550100"
    assert caller_number(Direction.INBOUND, "anonymous", "+1") == ""
    assert caller_number(Direction.INBOUND, None, "+1") == ""


def test_a_call_updates_the_profile_once() -> None:
    notes = CallerNotes(name="Ada", open_issues=("refund for order 1234",), preferences=("email",))
    first = remember(None, call_id="c1", time=DAY1, summary="Asked about 1234.", notes=notes,
                     keep=2)  # fmt: skip
    assert first.name == "Ada"
    assert [c.call_id for c in first.calls] == ["c1"]
    assert first.open_issues == ["refund for order 1234"]
    again = remember(first, call_id="c1", time=DAY1, summary="x", notes=CallerNotes(), keep=2)
    assert again == first

    later = remember(first, call_id="c2", time=DAY2, summary="Refund done.",
                     notes=CallerNotes(preferences=("mornings", "email")), keep=2)  # fmt: skip
    assert later.name == "Ada"  # not said again: still remembered
    assert later.open_issues == []  # the latest call's view of what is open
    assert later.preferences == ["mornings", "email"]
    third = remember(later, call_id="c3", time=DAY2, summary="Hi.", notes=CallerNotes(), keep=2)
    assert [c.call_id for c in third.calls] == ["c2", "c3"]


def test_the_prompt_values_of_a_known_and_a_new_caller() -> None:
    assert template_values(None) == {"caller_name": "", "caller_memory": ""}
    profile = Profile.model_validate(
        {
            "name": "Ada",
            "open_issues": ["refund"],
            "calls": [
                {"call_id": "c1", "time": DAY1, "summary": "Asked about 1234."},
                {"call_id": "c2", "time": DAY2, "summary": "Asked for a refund."},
            ],
        }
    )
    values = template_values(profile)
    assert values["caller_name"] == "Ada"
    assert values["caller_memory"] == (
        "Earlier calls (newest first):\n"
        "- 2026-12-02: Asked for a refund.\n"
        "- 2026-12-01: Asked about 1234.\n"
        "Open issues: refund"
    )


async def test_the_in_memory_store_is_per_tenant_and_forgets() -> None:
    store = InMemoryCallerMemory()
    await store.update("acme", "+1", lambda _p: Profile(name="Ada"), DAY1)
    assert (await store.get("acme", "+1")) == Profile(name="Ada")
    assert await store.get("globex", "+1") is None
    assert await store.forget("acme", "+1") == Profile(name="Ada")
    assert await store.forget("acme", "+1") is None
    assert await store.get("acme", "+1") is None
