"""Contact files (CSV/JSON, BOM, delimiters, bad rows by line) and the campaign rules."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from voicebus.campaigns import policy
from voicebus.campaigns.importer import UploadError, parse_chunk
from voicebus.contracts.campaigns import AmdPolicy, CampaignStatus, RetryPolicy, RetryRule
from voicebus.contracts.campaigns import UploadFormat as F
from voicebus.contracts.events import AttemptOutcome, EndReason
from voicebus.devkit.campaign.client import line_chunks

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def test_csv_with_bom_and_semicolons_loads_good_rows_and_reports_bad_ones_by_line() -> None:
    data = "\ufeffName;Phone;Plan\nAda;(212) 555-0199;gold\nBob;12;x\nCy\n".encode()
    data += b"D\xe9;+442079460958;x\nEve;+81 3 1234 5678;\n"
    result = parse_chunk(data, F.CSV, 1, None)
    assert [(r.line, r.number.e164, r.context) for r in result.rows] == [
        (2, "+12125550199", {"name": "Ada", "plan": "gold"}),
        (6, "+81312345678", {"name": "Eve"}),
    ]
    assert [(e.line, e.reason) for e in result.errors] == [
        (3, "not a valid phone number"),
        (4, "expected 3 columns, found 1"),
        (5, "not valid UTF-8"),
    ]
    assert result.header == "Name;Phone;Plan"
    assert result.read == 5


def test_a_later_chunk_uses_the_header_and_its_own_line_numbers() -> None:
    result = parse_chunk(b"Zed,+12125550100\nBad,+1\n", F.CSV, 41, "name,phone")
    assert result.rows[0].line == 41
    assert result.errors[0].line == 42


def test_csv_without_a_phone_column_is_refused_whole() -> None:
    with pytest.raises(UploadError, match="no phone column"):
        parse_chunk(b"name,city\nAda,NYC\n", F.CSV, 1, None)


def test_json_lines_and_a_pretty_array_both_load() -> None:
    data = b'[\n{"phone": "+12125550199", "name": "Ada", "vip": true},\n{"name": "x"},\n[1],\n]\n'
    result = parse_chunk(data, F.JSON, 1, None)
    assert [(r.line, r.context) for r in result.rows] == [(2, {"name": "Ada", "vip": "true"})]
    assert [(e.line, e.reason) for e in result.errors] == [
        (3, "missing column phone"),
        (4, "not a JSON object"),
    ]


def test_line_chunks_cut_at_line_ends_and_number_lines() -> None:
    text = b"".join(f"row {i}\n".encode() for i in range(1, 101))
    chunks = list(line_chunks(io.BytesIO(text), size=64))
    assert b"".join(c for _, c in chunks) == text
    assert all(c.endswith(b"\n") for _, c in chunks)
    line = 1
    for first, chunk in chunks:
        assert first == line
        assert chunk.startswith(f"row {line}\n".encode())
        line += chunk.count(b"\n")


@pytest.mark.parametrize(
    ("reason", "answered", "amd", "amd_policy", "want"),
    [
        (EndReason.BUSY, False, None, AmdPolicy.HANG_UP, AttemptOutcome.BUSY),
        (EndReason.NO_ANSWER, False, None, AmdPolicy.HANG_UP, AttemptOutcome.NO_ANSWER),
        (EndReason.PROVIDER_ERROR, False, None, AmdPolicy.HANG_UP, AttemptOutcome.FAILED),
        (EndReason.CALLER_HANGUP, True, "human", AmdPolicy.HANG_UP, AttemptOutcome.ANSWERED),
        (EndReason.MACHINE_DETECTED, True, "machine", AmdPolicy.HANG_UP, AttemptOutcome.MACHINE),
        (EndReason.AGENT_HANGUP, True, "machine", AmdPolicy.VOICEMAIL, AttemptOutcome.VOICEMAIL),
        (EndReason.CALLER_HANGUP, True, "machine", AmdPolicy.CONTINUE, AttemptOutcome.ANSWERED),
    ],
)
def test_outcomes(
    reason: EndReason, answered: bool, amd: str | None, amd_policy: AmdPolicy, want: str
) -> None:
    assert policy.outcome_of(reason, answered, amd, amd_policy) is want


def test_retries_follow_the_rule_of_the_outcome_and_the_overall_cap() -> None:
    rules = RetryPolicy(busy=RetryRule(max_attempts=3, delay_s=300), no_answer=None, max_attempts=2)
    first = policy.next_step(rules, AttemptOutcome.BUSY, 1, NOW)
    assert first.retry_at == NOW + timedelta(seconds=300)
    assert policy.next_step(rules, AttemptOutcome.BUSY, 2, NOW).retry_at is None  # overall cap
    assert policy.next_step(rules, AttemptOutcome.NO_ANSWER, 1, NOW).retry_at is None
    assert policy.next_step(rules, AttemptOutcome.ANSWERED, 1, NOW).retry_at is None


def test_lifecycle_moves() -> None:
    assert policy.transition("start", CampaignStatus.DRAFT) is CampaignStatus.SCHEDULED
    assert policy.transition("pause", CampaignStatus.RUNNING) is CampaignStatus.PAUSED
    assert policy.transition("resume", CampaignStatus.PAUSED) is CampaignStatus.SCHEDULED
    assert policy.transition("cancel", CampaignStatus.RUNNING) is CampaignStatus.CANCELLED
    assert policy.transition("start", CampaignStatus.RUNNING) is None
    assert policy.transition("resume", CampaignStatus.COMPLETED) is None


def test_caps_and_pacing_bound_the_dials() -> None:
    room = policy.capacity(
        campaign_cap=20, campaign_live=15, tenant_cap=100, tenant_live=98, caller_ids=["a", "b"],
        caller_cap=None, live_by_caller={}, tokens=10.0,
    )  # fmt: skip
    assert room.calls == 2  # the tenant cap is the tightest
    per_caller = policy.capacity(
        campaign_cap=20, campaign_live=0, tenant_cap=100, tenant_live=0, caller_ids=["a", "b"],
        caller_cap=2, live_by_caller={"a": 2, "b": 1}, tokens=10.0,
    )  # fmt: skip
    assert (per_caller.calls, per_caller.caller_ids) == (1, ["b"])
    assert policy.pick_caller_ids(3, ["a", "b"], 2, {"a": 2}, 0) == ["b", "b"]
    assert policy.refill(0.0, 100.0, 100.5, rate=10.0, burst=10.0) == 5.0
    assert policy.refill(0.0, 100.0, 200.0, rate=10.0, burst=10.0) == 10.0


@pytest.mark.parametrize(
    ("earlier", "result", "acts"),
    [
        (None, "human", True),
        (None, "machine", True),
        ("machine", "machine_end_beep", True),  # media: the greeting ended, leave the message
        ("machine", "machine", False),  # a second detector agrees: nothing more to do
        ("human", "machine", False),  # the first decision stands
        ("machine_end_beep", "machine_end_beep", False),
    ],
)
def test_the_first_amd_result_acts_and_then_only_the_end_of_a_machine_greeting(
    earlier: str | None, result: str, acts: bool
) -> None:
    assert policy.amd_acts(earlier, result) is acts
