"""A tenant's usage per day, and its CSV export, from the summed rows. Pure."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Final

from pydantic import BaseModel, Field

from voicebus.edge.usage.metering import Metric
from voicebus.edge.usage.store import UsageRow

_SCALE: Final = {Metric.CALL_SECONDS: 1 / 60}
"""Call seconds are reported as minutes."""
_NAMES: Final = {Metric.CALL_SECONDS: "minutes"}


class Breakdown(BaseModel):
    """A total, and its parts by one dimension."""

    total: float = Field(default=0.0, examples=[3.5])
    by: dict[str, float] = Field(default_factory=dict, examples=[{"inbound/twilio": 3.5}])


class Usage(BaseModel):
    """Usage over a day (or the whole range)."""

    calls: Breakdown = Field(
        default_factory=Breakdown, description="Connected calls, by direction/provider."
    )
    minutes: Breakdown = Field(
        default_factory=Breakdown,
        description="Call minutes (call.ended duration), by direction/provider.",
    )
    stt_seconds: Breakdown = Field(
        default_factory=Breakdown, description="Caller speech transcribed, by STT engine."
    )
    tts_characters: Breakdown = Field(
        default_factory=Breakdown, description="Characters of agent speech synthesized."
    )
    llm_tokens_in: Breakdown = Field(
        default_factory=Breakdown, description="Prompt tokens, by LLM engine (when reported)."
    )
    llm_tokens_out: Breakdown = Field(
        default_factory=Breakdown, description="Completion tokens, by LLM engine (when reported)."
    )
    tool_calls: Breakdown = Field(default_factory=Breakdown, description="Tool calls, by tool.")


class UsageDay(Usage):
    """One UTC day's usage."""

    day: date


class UsageReport(BaseModel):
    """A tenant's usage from ``from_day`` to ``to_day`` (UTC days, both included)."""

    tenant_id: str
    from_day: date
    to_day: date
    days: list[UsageDay] = Field(description="Days with any usage, in order.")
    totals: Usage = Field(description="The whole range.")


def _name(metric: Metric) -> str:
    return _NAMES.get(metric, metric.value)


def _add(usage: Usage, row: UsageRow) -> None:
    part: Breakdown = getattr(usage, _name(row.metric))
    amount = row.amount * _SCALE.get(row.metric, 1.0)
    part.total = round(part.total + amount, 6)
    if row.dimension:
        part.by[row.dimension] = round(part.by.get(row.dimension, 0.0) + amount, 6)


def report(tenant_id: str, first: date, last: date, rows: Iterable[UsageRow]) -> UsageReport:
    """The report of ``rows`` (summed per day, metric and dimension)."""
    days: dict[date, UsageDay] = {}
    totals = Usage()
    for row in rows:
        _add(days.setdefault(row.day, UsageDay(day=row.day)), row)
        _add(totals, row)
    ordered = [days[d] for d in sorted(days)]
    return UsageReport(
        tenant_id=tenant_id, from_day=first, to_day=last, days=ordered, totals=totals
    )


def to_csv(rows: Iterable[UsageRow]) -> str:
    """``day,metric,dimension,amount``, one line per day, metric and dimension."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", "metric", "dimension", "amount"])
    for row in rows:
        amount = round(row.amount * _SCALE.get(row.metric, 1.0), 6)
        number = f"{amount:.6f}".rstrip("0").rstrip(".")
        writer.writerow([row.day.isoformat(), _name(row.metric), _cell(row.dimension), number])
    return out.getvalue()


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
