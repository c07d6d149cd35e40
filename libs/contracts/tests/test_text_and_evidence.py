"""Control characters are refused by the contracts; a call's chain is recomputed from rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from voicebus.contracts import evidence
from voicebus.contracts.campaigns import CampaignSpec
from voicebus.contracts.commands import OriginateCall, OriginateCallData, Say, SayData
from voicebus.contracts.events import (
    CallInitiated,
    CallInitiatedData,
    ToolCalled,
    ToolCalledData,
    parse_event,
)
from voicebus.contracts.text import find_control, scrub, strip_control

pytestmark = pytest.mark.unit


def _initiated(context: dict[str, str]) -> CallInitiated:
    data = CallInitiatedData(direction="inbound", provider="twilio", agent_id="demo",
                             context=context)  # fmt: skip
    return CallInitiated(tenant_id="acme", call_id="c1", source="gateway/1", data=data)


def test_a_nul_in_a_context_value_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        _initiated({"note": "a\u0000b"})
    text = str(caught.value)
    assert "context['note']" in text
    assert "U+0000" in text


def test_the_same_rule_holds_when_parsing_json_keys_nested_values_and_commands() -> None:
    raw = _initiated({"note": "ok"}).to_bytes().replace(b'"note"', b'"no\\u001bte"')
    with pytest.raises(ValidationError, match="a key"):
        parse_event(raw)
    with pytest.raises(ValidationError, match=r"arguments\['q'\]\[0\]"):
        ToolCalled(tenant_id="acme", call_id="c1", source="o/1",
                   data=ToolCalledData(tool_call_id="t1", name="x",
                                       arguments={"q": ["\x7f"]}))  # fmt: skip
    with pytest.raises(ValidationError, match="text"):
        SayData(utterance_id="u1", seq=0, text="hi\x85")
    with pytest.raises(ValidationError, match="context"):
        OriginateCallData(agent_id="demo", to_number="+14155550199", context={"a": "\x00"})
    with pytest.raises(ValidationError, match="source"):
        Say(tenant_id="acme", call_id="c1", source="o\x00",
            data=SayData(utterance_id="u1", seq=0, text="hi"))  # fmt: skip
    with pytest.raises(ValidationError, match="name"):
        CampaignSpec(name="x\x1b[31m", agent_id="demo")
    assert OriginateCall


def test_tab_newline_and_carriage_return_are_text() -> None:
    event = _initiated({"note": "line 1\r\nline 2\tend", "név": "Zoë ✓"})
    assert parse_event(event.to_bytes()) == event


def test_outside_text_is_stripped_by_producers() -> None:
    assert strip_control("a\u0000b\x1b[0m\tc\u0085") == "ab[0m\tc"
    assert scrub({"k\x01": ["x\x7f", 1, {"y": "\x00z"}]}) == {"k": ["x", 1, {"y": "z"}]}
    assert find_control({"a": ["ok", "b\x02"]}, "args") == "args['a'][1]: U+0002"
    assert find_control("clean", "x") is None


def _link(data: object, n: int = 0) -> evidence.Link:
    when = datetime(2026, 11, 21, 10, 15, 30, 123000 + n, tzinfo=UTC)
    return evidence.Link(f"e{n}", "call.started.v1", "gw/1", when, "acme", "c1",
                         evidence.normalize(data))  # fmt: skip


def test_the_canonical_form_is_fixed_and_numbers_are_values() -> None:
    link = _link({"b": 1.0, "a": "é", "n": [1e2, 2.5, None, True]})
    assert (
        evidence.canonical(link)
        == (
            '{"call_id":"c1","data":{"a":"é","b":1,"n":[100,2.5,null,true]},"id":"e0",'
            '"source":"gw/1","tenant_id":"acme","time":"2026-11-21T10:15:30.123000Z",'
            '"type":"call.started.v1"}'
        ).encode()
    )
    # What jsonb gives back for the same data hashes the same.
    assert evidence.load('{"n": [100, 2.50, null, true], "a": "\\u00e9", "b": 1}') == link.data
    with pytest.raises(evidence.CanonicalFormError):
        evidence.load('{"x": 1e400}')


def test_verify_finds_the_first_broken_link_and_a_wrong_head() -> None:
    links = [_link({"i": i}, i) for i in range(5)]
    current = evidence.genesis("acme", "c1")
    stored = []
    for seq, link in enumerate(links, start=1):
        current = evidence.next_hash(current, link)
        stored.append(evidence.StoredLink(seq, current, link))
    ok = evidence.verify("acme", "c1", stored, current, 5)
    assert ok.ok
    assert ok.head == current
    assert ok.length == 5

    tampered = list(stored)
    tampered[2] = replace(stored[2], link=replace(links[2], data={"i": 99}))
    bad = evidence.verify("acme", "c1", tampered, current, 5)
    assert (bad.ok, bad.broken_at, bad.event_id) == (False, 3, "e2")

    missing = stored[:2] + stored[3:]
    assert evidence.verify("acme", "c1", missing, current, 5).broken_at == 3
    truncated = evidence.verify("acme", "c1", stored[:4], current, 5)
    assert not truncated.ok
    assert "5 links" in (truncated.problem or "")
    assert not evidence.verify("acme", "c1", stored, evidence.genesis("x", "y"), 5).ok
    # A link moved to another call's chain does not fit there.
    assert not evidence.verify("acme", "c2", stored, None, None).ok


def test_erased_links_stand_by_their_hash_and_the_rest_is_still_recomputed() -> None:
    links = [_link({"i": i}, i) for i in range(4)]
    current = evidence.genesis("acme", "c1")
    stored = []
    for seq, link in enumerate(links, start=1):
        current = evidence.next_hash(current, link)
        stored.append(evidence.StoredLink(seq, current, link))
    tombstone = {"erased": True}
    erased = [replace(s, link=replace(s.link, data=tombstone), erased=True) for s in stored[:2]]
    ok = evidence.verify("acme", "c1", erased + stored[2:], current, 4)
    assert (ok.ok, ok.length, ok.erased) == (True, 4, 2)
    # Erasing without the mark is a change like any other.
    unmarked = [replace(e, erased=False) for e in erased]
    assert evidence.verify("acme", "c1", unmarked + stored[2:], current, 4).broken_at == 1
    # An erased link whose hash was rewritten breaks the next link, then the head.
    forged = replace(erased[1], hash=bytes(32))
    assert (
        evidence.verify("acme", "c1", [erased[0], forged, *stored[2:]], current, 4).broken_at == 3
    )
    last = replace(stored[3], link=replace(links[3], data=tombstone), erased=True, hash=bytes(32))
    tail = evidence.verify("acme", "c1", [*stored[:3], last], current, 4)
    assert not tail.ok
    assert "head" in (tail.problem or "")
    # A later link after an erased one still catches a change.
    changed = replace(stored[2], link=replace(links[2], data={"i": 99}))
    assert evidence.verify("acme", "c1", [*erased, changed, stored[3]], current, 4).broken_at == 3
    no_hash = replace(erased[0], hash=None)
    assert evidence.verify("acme", "c1", [no_hash, *stored[1:]], current, 4).broken_at == 1


def test_report_cells_cannot_become_spreadsheet_formulas() -> None:
    from voicebus.contracts.campaigns import ReportRow, csv_cell, report_cells

    for cell in ("=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                 "\t=1", "\r=1"):  # fmt: skip
        assert csv_cell(cell) == "'" + cell
    for cell in ("+14155550100", "-1.5", "42", "ok", "a=b"):
        assert csv_cell(cell) == cell
    assert csv_cell(None) == ""
    row = ReportRow(contact_id=1, phone="+14155550100", state="done", attempts=1,
                    outcome="answered", duration_s=None, recording_id=None,
                    last_call_id="=1+1", last_attempt_at=None)  # fmt: skip
    cells = report_cells(row)
    assert cells[1] == "+14155550100"
    assert "'=1+1" in cells
