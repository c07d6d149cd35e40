"""Caller memory: a profile per tenant and caller number, updated from each call's analysis.

The profile (name, preferences, the last calls' summaries, open issues) is personal
data: it is kept only for agents that opt in (``memory.enabled``), reaches the prompt
only as the template variables ``{{caller_name}}`` and ``{{caller_memory}}``, and is
deleted by number (:meth:`CallerMemory.forget`). An update names its call, so a
redelivered analysis changes nothing (:func:`remember`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from voicebus.contracts.agents import CALLER_MEMORY, CALLER_NAME
from voicebus.contracts.events import Direction
from voicebus.orchestrator.analysis import CallerNotes
from voicebus.orchestrator.tables import CALLER_MEMORY as TABLE

_ANONYMOUS: Final = frozenset({"anonymous", "unknown", "restricted", "private"})


class PastCall(BaseModel):
    """One earlier call in a profile."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    time: datetime
    summary: str = ""


class Profile(BaseModel):
    """What the agents remember about one caller of one tenant."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    preferences: list[str] = Field(default_factory=list)
    open_issues: list[str] = Field(default_factory=list)
    calls: list[PastCall] = Field(default_factory=list, description="Newest last.")


def caller_key(number: str) -> str:
    """The key a number is remembered under: the number without whitespace."""
    return "".join(number.split())


def caller_number(direction: Direction, from_number: str | None, to_number: str | None) -> str:
    """The caller's number ('' when withheld): who called in, or who was called."""
    number = caller_key((from_number if direction is Direction.INBOUND else to_number) or "")
    return "" if number.lower() in _ANONYMOUS else number


def remember(
    profile: Profile | None,
    *,
    call_id: str,
    time: datetime,
    summary: str | None,
    notes: CallerNotes,
    keep: int,
) -> Profile:
    """The profile after one analysed call; the same call twice changes nothing.

    The latest call's open issues replace the earlier ones (its analysis saw the caller's
    whole situation); preferences accumulate, newest first, without repeats.
    """
    profile = profile or Profile()
    if any(c.call_id == call_id for c in profile.calls):
        return profile
    calls = [*profile.calls, PastCall(call_id=call_id, time=time, summary=summary or "")]
    preferences = list(dict.fromkeys([*notes.preferences, *profile.preferences]))[:10]
    return Profile(
        name=notes.name or profile.name,
        preferences=preferences,
        open_issues=list(notes.open_issues),
        calls=calls[-keep:],
    )


def template_values(profile: Profile | None) -> dict[str, str]:
    """``{{caller_name}}`` and ``{{caller_memory}}`` for a call (empty for a new caller)."""
    if profile is None:
        return {CALLER_NAME: "", CALLER_MEMORY: ""}
    lines = [
        f"- {c.time.date().isoformat()}: {c.summary}" for c in reversed(profile.calls) if c.summary
    ]
    parts = []
    if lines:
        parts.append("Earlier calls (newest first):\n" + "\n".join(lines))
    if profile.open_issues:
        parts.append("Open issues: " + "; ".join(profile.open_issues))
    if profile.preferences:
        parts.append("Preferences: " + "; ".join(profile.preferences))
    return {CALLER_NAME: profile.name or "", CALLER_MEMORY: "\n".join(parts)}


Update = Callable[[Profile | None], Profile]


class CallerMemory(Protocol):
    """Where profiles live: :class:`SqlCallerMemory`, or :class:`InMemoryCallerMemory`."""

    async def get(self, tenant_id: str, number: str) -> Profile | None:
        """The caller's profile, or None."""
        ...

    async def update(self, tenant_id: str, number: str, change: Update, now: datetime) -> Profile:
        """Apply ``change`` to the caller's profile atomically; returns the new profile."""
        ...

    async def forget(self, tenant_id: str, number: str) -> Profile | None:
        """Delete the caller's profile; returns it (None: there was none)."""
        ...


class SqlCallerMemory:
    """Profiles in ``orchestrator.caller_memory``; every query is confined to its tenant.

    Args:
        engine: an engine on the orchestrator's schema (bound at start).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, tenant_id: str, number: str) -> Profile | None:
        """The caller's profile, or None."""
        query = select(TABLE.c.profile).where(
            TABLE.c.tenant_id == tenant_id, TABLE.c.number == number
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Profile.model_validate(row.profile)

    async def update(self, tenant_id: str, number: str, change: Update, now: datetime) -> Profile:
        """Read, change and write the profile under a row lock (two calls ending at once
        from one number must not lose either's update)."""
        key = (TABLE.c.tenant_id == tenant_id, TABLE.c.number == number)
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(TABLE)
                .values(tenant_id=tenant_id, number=number, profile={}, updated_at=now)
                .on_conflict_do_nothing()
            )
            row = (await conn.execute(select(TABLE.c.profile).where(*key).with_for_update())).one()
            current = Profile.model_validate(row.profile) if row.profile else None
            profile = change(current)
            await conn.execute(
                TABLE.update()
                .where(*key)
                .values(profile=profile.model_dump(mode="json"), updated_at=now)
            )
        return profile

    async def forget(self, tenant_id: str, number: str) -> Profile | None:
        """Delete the caller's profile; returns it (None: there was none)."""
        query = (
            delete(TABLE)
            .where(TABLE.c.tenant_id == tenant_id, TABLE.c.number == number)
            .returning(TABLE.c.profile)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Profile.model_validate(row.profile)


class InMemoryCallerMemory:
    """Profiles in a dict (development without a database, and unit tests)."""

    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str], Profile] = {}

    async def get(self, tenant_id: str, number: str) -> Profile | None:
        """The caller's profile, or None."""
        return self.profiles.get((tenant_id, number))

    async def update(self, tenant_id: str, number: str, change: Update, now: datetime) -> Profile:
        """Apply ``change``."""
        profile = change(self.profiles.get((tenant_id, number)))
        self.profiles[(tenant_id, number)] = profile
        return profile

    async def forget(self, tenant_id: str, number: str) -> Profile | None:
        """Delete the caller's profile; returns it."""
        return self.profiles.pop((tenant_id, number), None)
