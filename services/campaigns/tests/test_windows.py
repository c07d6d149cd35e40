"""Calling windows: every zone of the number, the US bound, deferral to the next opening."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from voicebus.campaigns import windows
from voicebus.contracts.campaigns import CampaignSpec, Recurrence, TimeRange, Weekday

pytestmark = pytest.mark.unit

MONDAY_14_UTC = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def spec(start: int = 7, end: int = 22, **over: object) -> CampaignSpec:
    days = {d: [TimeRange(start=time(start), end=time(end))] for d in Weekday}
    return CampaignSpec.model_validate(
        {"name": "t", "agent_id": "demo", "caller_ids": ["+14155550100"], "windows": days, **over}
    )


def test_inside_the_window_in_the_callees_zone_is_allowed_with_the_local_time() -> None:
    decision = windows.check(MONDAY_14_UTC, ("America/New_York",), "US", spec())
    assert decision.allowed
    assert decision.local_times == ("2026-11-23T09:00:00-05:00",)


def test_the_us_bound_wins_over_a_wider_campaign_window() -> None:
    # 06:00 in Los Angeles; the campaign allows 07:00 but TCPA only 08:00 (16:00 UTC).
    decision = windows.check(MONDAY_14_UTC, ("America/Los_Angeles",), "US", spec())
    assert not decision.allowed
    assert decision.next_opening == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    # The same zone outside the US follows the campaign: 07:00 local.
    other = windows.check(MONDAY_14_UTC, ("America/Los_Angeles",), "MX", spec())
    assert other.next_opening == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_a_number_in_two_zones_is_called_only_when_both_are_inside() -> None:
    zones = ("America/Boise", "America/Los_Angeles")
    at_15 = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # Boise 08:30, LA 07:30
    decision = windows.check(at_15, zones, "US", spec())
    assert not decision.allowed
    assert decision.next_opening == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    # Evening: Boise reaches 21:00 an hour before Los Angeles does.
    at_4 = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)  # Boise 21:30, LA 20:30
    assert not windows.check(at_4, zones, "US", spec()).allowed
    assert windows.check(at_4, ("America/Los_Angeles",), "US", spec()).allowed


def test_a_closed_weekday_defers_to_the_next_open_day() -> None:
    only_tuesday = spec().model_copy(
        update={"windows": {Weekday.TUE: [TimeRange(start=time(9), end=time(17))]}}
    )
    decision = windows.check(MONDAY_14_UTC, ("Europe/London",), "GB", only_tuesday)
    assert decision.next_opening == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_unknown_zone_uses_the_campaigns_default_zone() -> None:
    decision = windows.check(MONDAY_14_UTC, (), None, spec(default_time_zone="Asia/Tokyo"))
    assert decision.zones == ("Asia/Tokyo",)
    assert not decision.allowed  # 23:00 in Tokyo
    assert decision.next_opening == datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


def test_start_and_end_dates_gate_the_campaign() -> None:
    later = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    before = windows.check(MONDAY_14_UTC, ("Europe/London",), "GB", spec(start_at=later))
    assert (before.allowed, before.reason, before.next_opening) == (
        False,
        "before campaign start",
        later,
    )
    ended = windows.check(MONDAY_14_UTC, ("Europe/London",), "GB", spec(end_at=MONDAY_14_UTC))
    assert (ended.allowed, ended.next_opening) == (False, None)


def test_a_cron_recurrence_opens_runs_of_the_given_length() -> None:
    weekly = spec(recurrence=Recurrence(cron="0 15 * * 1", duration_minutes=60))
    assert not windows.check(MONDAY_14_UTC, ("Europe/London",), "GB", weekly).allowed
    inside = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert windows.check(inside, ("Europe/London",), "GB", weekly).allowed
    after = datetime(2026, 11, 23, 16, 5, tzinfo=UTC)
    decision = windows.check(after, ("Europe/London",), "GB", weekly)
    assert decision.next_opening == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
