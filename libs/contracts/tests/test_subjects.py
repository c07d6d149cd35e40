"""Subject builders: every shape, and refusal of tokens that would change a subject's meaning."""

from __future__ import annotations

import pytest

from voicebus.contracts import InvalidTokenError, subjects

pytestmark = pytest.mark.unit


def test_every_shape() -> None:
    assert subjects.audio_in("c1") == "vb.audio.c1.in"
    assert subjects.audio_out("c1") == "vb.audio.c1.out"
    assert subjects.ctl("c1", "say") == "vb.ctl.c1.say"
    assert subjects.ctl("c1", subjects.CtlVerb.CLEAR) == "vb.ctl.c1.clear"
    assert subjects.evt("acme", "c1", "call.started") == "vb.evt.acme.c1.call.started"
    assert subjects.evt("acme", "c1", "call.started.v1") == "vb.evt.acme.c1.call.started"
    assert subjects.cmd("call", "originate") == "vb.cmd.call.originate"
    assert subjects.rpc("audit", "calls", "get") == "vb.rpc.audit.calls.get"


def test_filters() -> None:
    assert subjects.evt_filter() == "vb.evt.*.*.>"
    assert subjects.evt_filter("acme") == "vb.evt.acme.*.>"
    assert subjects.evt_filter(call_id="c1") == "vb.evt.*.c1.>"
    assert subjects.evt_filter("acme", "c1", "call.ended.v1") == "vb.evt.acme.c1.call.ended"
    assert subjects.ctl_all("c1") == "vb.ctl.c1.*"


@pytest.mark.parametrize(
    "bad", ["c.1", "*", ">", "c 1", "", "c\t1", "ü", "a" * 129, "c1.>", "$SYS"]
)
def test_bad_call_ids_are_refused_with_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidTokenError, match="invalid call id") as info:
        subjects.audio_in(bad)
    assert "no dots, wildcards or spaces" in str(info.value)


def test_bad_tokens_in_every_position() -> None:
    with pytest.raises(InvalidTokenError, match="tenant id"):
        subjects.evt("ac.me", "c1", "call.started")
    with pytest.raises(InvalidTokenError, match="event type"):
        subjects.evt("acme", "c1", "call.*")
    with pytest.raises(InvalidTokenError, match="control verb"):
        subjects.ctl("c1", "explode")
    with pytest.raises(InvalidTokenError, match="command verb"):
        subjects.cmd("call", "orig inate")
    with pytest.raises(InvalidTokenError, match="service"):
        subjects.rpc("audit.x", "calls", "get")


def test_invalid_token_is_a_value_error() -> None:
    # Edges turn ValueError into a 4xx; the contract promises that.
    assert issubclass(InvalidTokenError, ValueError)


def test_strip_version() -> None:
    assert subjects.strip_version("call.started.v1") == "call.started"
    assert subjects.strip_version("call.started.v12") == "call.started"
    assert subjects.strip_version("call.started") == "call.started"


def test_dead_letter_and_advisory_subjects() -> None:
    assert subjects.dlq("audit", "storage_rejected") == "vb.dlq.audit.storage_rejected"
    assert (
        subjects.max_deliveries_advisory("VB_COMMANDS", "gateway-originate")
        == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.VB_COMMANDS.gateway-originate"
    )
    assert subjects.max_deliveries_advisory("VB_COMMANDS").endswith(".VB_COMMANDS.*")
    with pytest.raises(InvalidTokenError):
        subjects.dlq("audit", "a.b")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("subject", "pattern"),
    [
        (subjects.audio_in("c1"), "vb.audio.*.in"),
        (subjects.audio_out("c1"), "vb.audio.*.out"),
        (subjects.audio_played("c1"), "vb.audio.*.played"),
        (subjects.ctl("c1", "say"), "vb.ctl.*.say"),
        (subjects.evt("acme", "c1", "call.ended.v1"), "vb.evt.*.*.call.ended"),
        (subjects.cmd("call", "originate"), "vb.cmd.call.originate"),
        (subjects.rpc("audit", "calls", "get"), "vb.rpc.audit.calls.get"),
        (subjects.dlq("audit", "invalid"), "vb.dlq.audit.invalid"),
        ("_INBOX.abc.def", "_INBOX.>"),
        ("_INBOX_media.abc.def", "_INBOX_media.>"),
        ("$KV.vb_sessions.c1", "$KV.vb_sessions.>"),
        ("$JS.API.CONSUMER.INFO.VB_EVENTS.audit", "$JS.API.>"),
        ("vb.audio.c1.weird", "vb.audio.*.*"),
        ("vb.evt.acme.c1.NOT A TYPE", "vb.evt.*.*.>"),
        ("vb.something.else.entirely", "vb.something.>"),
        ("random.subject.x", "random.>"),
        ("wild*.x", "?.>"),
        ("", "?.>"),
    ],
)
def test_subject_pattern_hides_call_and_tenant_ids(subject: str, pattern: str) -> None:
    assert subjects.subject_pattern(subject) == pattern


@pytest.mark.unit
def test_subject_patterns_stay_bounded_over_many_calls() -> None:
    seen = {
        subjects.subject_pattern(s)
        for i in range(500)
        for s in (
            subjects.audio_in(f"call-{i}"),
            subjects.ctl(f"call-{i}", "clear"),
            subjects.evt(f"tenant-{i % 7}", f"call-{i}", "transcript.final"),
            f"_INBOX.{i}.{i * 3}",
        )
    }
    assert len(seen) == 4
