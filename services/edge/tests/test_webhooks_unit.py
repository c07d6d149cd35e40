"""The pure parts of webhooks and usage: filters, signatures, routing, retries, metering,
the usage report and its CSV."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
)
from voicebus.edge.api.routes_webhooks import url_problem
from voicebus.edge.usage.metering import Metric, items_of
from voicebus.edge.usage.report import report, to_csv
from voicebus.edge.usage.store import UsageRow
from voicebus.edge.webhooks import filters, signing
from voicebus.edge.webhooks.retries import RetryPolicy
from voicebus.edge.webhooks.routing import NotAnEventError, by_tenant, read_head, route
from voicebus.edge.webhooks.store import Webhook

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def hook(tenant: str, *types: str, enabled: bool = True) -> Webhook:
    return Webhook(f"wh_{tenant}", tenant, "https://x.example", types, "", enabled, NOW, NOW)


@pytest.mark.parametrize(
    ("patterns", "event_type", "passes"),
    [
        (["call.started"], "call.started.v1", True),
        (["call.started.v1"], "call.started.v1", True),
        (["call.started.v2"], "call.started.v1", False),
        (["call.*"], "call.ended.v1", True),
        (["call.*"], "campaign.progress.v1", False),
        (["campaign.*"], "campaign.progress.v1", True),
        (["*"], "call.analyzed.v1", True),
        (["call.analyzed"], "call.analyzed.v1", True),
        (["agent.*"], "agent.speech.started.v1", True),
        (["call.started"], "call.started_late.v1", False),
    ],
)
def test_filters_match_types_versions_and_prefixes(
    patterns: list[str], event_type: str, passes: bool
) -> None:
    assert filters.matches(patterns, event_type) is passes


@pytest.mark.parametrize("bad", ["", "call started", "call.", ".call", "call.**", "vb.evt.>", "C"])
def test_malformed_filters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an event-type filter"):
        filters.check_filter(bad)


def test_signature_verifies_only_the_same_body_secret_and_a_fresh_time() -> None:
    header = signing.signature("whsec_k", 1_700_000_000, b'{"a":1}')
    assert signing.verify("whsec_k", header, b'{"a":1}', now=1_700_000_010)
    assert not signing.verify("whsec_k", header, b'{"a":2}', now=1_700_000_010)
    assert not signing.verify("other", header, b'{"a":1}', now=1_700_000_010)
    assert not signing.verify("whsec_k", header, b'{"a":1}', now=1_700_000_000 + 301)
    assert not signing.verify("whsec_k", "garbage", b"", now=0)
    assert signing.new_secret() != signing.new_secret()


def envelope(tenant: str, call: str, event_type: str) -> bytes:
    return json.dumps(
        {"id": "e1", "type": event_type, "tenant_id": tenant, "call_id": call}
    ).encode()


def test_routing_sends_an_event_only_to_its_own_tenants_matching_hooks() -> None:
    hooks = by_tenant(
        [hook("acme", "call.*"), hook("globex", "*"), hook("acme2", "*", enabled=False)]
    )
    body = envelope("acme", "c1", "call.started.v1")
    head = read_head("vb.evt.acme.c1.call.started", body)
    out = route(head, 7, body, hooks)
    assert [(o.webhook_id, o.seq, o.call_id) for o in out] == [("wh_acme", 7, "c1")]
    assert "acme2" not in hooks


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("vb.evt.acme.c1.call.started", envelope("globex", "c1", "call.started.v1")),
        ("vb.evt.acme.c1.call.started", envelope("acme", "c2", "call.started.v1")),
        ("vb.evt.acme.c1.call.started", envelope("acme", "c1", "call.ended.v1")),
        ("vb.evt.acme.c1.call.started", b"not json"),
        ("vb.evt.acme.c1.call.started", b"[1]"),
    ],
)
def test_an_envelope_that_disagrees_with_its_subject_is_refused(subject: str, body: bytes) -> None:
    with pytest.raises(NotAnEventError):
        read_head(subject, body)


def test_retry_delays_grow_to_the_cap_and_the_budget_ends_them() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=10, cap_s=60)
    delays = [policy.delay_s(n, rand=lambda: 1.0) for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]
    assert policy.delay_s(1, rand=lambda: 0.0) == 5
    assert not policy.gives_up(4, budget=5)
    assert policy.gives_up(5, budget=5)


def test_metering_reads_calls_minutes_and_tokens() -> None:
    common = {"tenant_id": "acme", "call_id": "c1", "source": "t", "time": NOW}
    started = CallStarted(**common, data=CallStartedData(direction=Direction.OUTBOUND,
                          provider="plivo", agent_id="a", gateway_instance="g"))  # fmt: skip
    [calls] = items_of(started)
    assert (calls.metric, calls.dimension, calls.amount) == (Metric.CALLS, "outbound/plivo", 1)
    ended = CallEnded(**common, data=CallEndedData(reason=EndReason.AGENT_HANGUP, duration_s=90))
    [seconds] = items_of(ended)
    assert (seconds.metric, seconds.dimension, seconds.amount) == (Metric.CALL_SECONDS, None, 90)
    never = CallEnded(**common, data=CallEndedData(reason=EndReason.NO_ANSWER))
    assert items_of(never) == []
    untold = AgentReply(**common, data=AgentReplyData(turn_id="t", utterance_id="u", text="x"))
    assert items_of(untold) == []


def test_report_sums_by_day_and_csv_keeps_every_row() -> None:
    rows = [
        UsageRow(date(2026, 11, 20), Metric.CALLS, "inbound/twilio", 2),
        UsageRow(date(2026, 11, 20), Metric.CALL_SECONDS, "inbound/twilio", 90),
        UsageRow(date(2026, 11, 21), Metric.TOOL_CALLS, "=cmd", 1_234_567),
    ]
    made = report("acme", date(2026, 11, 20), date(2026, 11, 21), rows)
    assert [d.day for d in made.days] == [date(2026, 11, 20), date(2026, 11, 21)]
    assert made.days[0].minutes.total == 1.5
    assert made.totals.tool_calls.by == {"=cmd": 1_234_567}
    lines = to_csv(rows).splitlines()
    assert lines[0] == "day,metric,dimension,amount"
    assert lines[2] == "2026-11-20,minutes,inbound/twilio,1.5"
    assert lines[3] == "2026-11-21,tool_calls,'=cmd,1234567"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[bad", "is not a valid URL"),
        ("http://host:99999/", "is not a valid URL"),
        ("ftp://host/x", "must be an http or https URL with a host"),
        ("https:///path", "must be an http or https URL with a host"),
        ("https://user:pw@host/", "must not carry credentials"),
        ("https://crm.example.com/hook?x=1", None),
    ],
)
def test_webhook_url_form(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem
