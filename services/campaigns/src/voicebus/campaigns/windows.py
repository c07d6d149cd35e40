"""Calling windows in the callee's local time. Pure: values in, a decision out.

A contact may be called at instant ``t`` only if ``t`` is inside the
campaign's window for the local weekday in *every* zone its number maps to
(a number that spans zones is called only when it is a decent hour in all of
them). US numbers are further held to 08:00-21:00 local whatever the
campaign says (TCPA). Outside the window the attempt is deferred to the next
opening, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cronsim import CronSim

from voicebus.contracts.campaigns import CampaignSpec, Weekday

TCPA_START = time(8)
TCPA_END = time(21)
TCPA_REGIONS = frozenset({"US"})
_WEEKDAYS = tuple(Weekday)  # Monday first, as datetime.weekday()
_SEARCH_DAYS = 8


@dataclass(frozen=True, slots=True)
class WindowDecision:
    """Whether a contact may be dialed now, and if not, when."""

    allowed: bool
    zones: tuple[str, ...]
    local_times: tuple[str, ...]
    next_opening: datetime | None = None
    reason: str | None = None


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _ranges(spec: CampaignSpec, day: Weekday, us: bool) -> list[tuple[time, time]]:
    out: list[tuple[time, time]] = []
    for r in spec.windows.get(day, []):
        start, end = r.start, r.end
        if us:
            start, end = max(start, TCPA_START), min(end, TCPA_END)
        if start < end:
            out.append((start, end))
    return out


def _inside_zone(t: datetime, zone: str, spec: CampaignSpec, us: bool) -> bool:
    local = t.astimezone(_zone(zone))
    now = local.time().replace(tzinfo=None)
    return any(start <= now < end for start, end in _ranges(spec, _WEEKDAYS[local.weekday()], us))


def _recurrence_open(t: datetime, spec: CampaignSpec) -> bool:
    if spec.recurrence is None:
        return True
    zone = _zone(spec.default_time_zone)
    span = timedelta(minutes=spec.recurrence.duration_minutes)
    local = t.astimezone(zone)
    first_fire = next(iter(CronSim(spec.recurrence.cron, (local - span).replace(tzinfo=None))))
    return first_fire.replace(tzinfo=zone) <= local


def _campaign_gate(t: datetime, spec: CampaignSpec) -> str | None:
    if spec.start_at is not None and t < spec.start_at:
        return "before campaign start"
    if spec.end_at is not None and t >= spec.end_at:
        return "after campaign end"
    if not _recurrence_open(t, spec):
        return "outside recurrence run"
    return None


def allowed_at(t: datetime, zones: Sequence[str], spec: CampaignSpec, us: bool) -> bool:
    """True if ``t`` is inside the window in every zone and the campaign is open."""
    if _campaign_gate(t, spec) is not None:
        return False
    return all(_inside_zone(t, zone, spec, us) for zone in zones)


def _candidates(
    t: datetime, zones: Sequence[str], spec: CampaignSpec, us: bool
) -> Iterable[datetime]:
    """Instants after ``t`` at which the answer may turn to "allowed"."""
    for zone in zones:
        tz = _zone(zone)
        day0 = t.astimezone(tz).date()
        for offset in range(_SEARCH_DAYS):
            day = day0 + timedelta(days=offset)
            for start, _end in _ranges(spec, _WEEKDAYS[day.weekday()], us):
                yield datetime.combine(day, start, tzinfo=tz)
    if spec.start_at is not None:
        yield spec.start_at
    if spec.recurrence is not None:
        tz = _zone(spec.default_time_zone)
        fires = CronSim(spec.recurrence.cron, t.astimezone(tz).replace(tzinfo=None))
        for _, fire in zip(range(64), fires, strict=False):
            yield fire.replace(tzinfo=tz)


def next_opening(
    t: datetime, zones: Sequence[str], spec: CampaignSpec, us: bool
) -> datetime | None:
    """The first instant after ``t`` inside the window everywhere, or None within 8 days."""
    if spec.end_at is not None and t >= spec.end_at:
        return None
    for c in sorted(c for c in _candidates(t, zones, spec, us) if c > t):
        if spec.end_at is not None and c >= spec.end_at:
            return None
        if allowed_at(c, zones, spec, us):
            return c.astimezone(t.tzinfo)
    return None


def check(
    t: datetime, zones: Sequence[str], region: str | None, spec: CampaignSpec
) -> WindowDecision:
    """Decide for one contact at ``t``.

    Args:
        t: now (business clock), aware.
        zones: the number's zones; empty means unknown → the campaign's default zone.
        region: the number's region (``US`` applies the TCPA bound).
        spec: the campaign.
    """
    used = tuple(zones) or (spec.default_time_zone,)
    us = region in TCPA_REGIONS
    local = tuple(t.astimezone(_zone(z)).isoformat(timespec="seconds") for z in used)
    if allowed_at(t, used, spec, us):
        return WindowDecision(True, used, local)
    gate = _campaign_gate(t, spec)
    return WindowDecision(
        False,
        used,
        local,
        next_opening(t, used, spec, us),
        gate or "outside calling window",
    )
