"""Personal data taken out of text: what is caught, and what is left alone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voicebus.contracts.agents import AgentDefinition
from voicebus.contracts.redaction import Kind, RedactionSettings, luhn_ok, redact

ALL = RedactionSettings(kinds=list(Kind), patterns=[r"\bM-\d{4}\b"])


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("my card is 4111 1111 1111 1111 thanks", "my card is [card] thanks"),
        ("4111-1111-1111-1111", "[card]"),
        ("social 123-45-6789 ok", "social [ssn] ok"),
        ("mail ada@example.com now", "mail [email] now"),
        ("account 98 76 54 32", "account [digits]"),
        ("member M-1234 here", "member [redacted] here"),
    ],
)
def test_personal_data_becomes_a_label(said: str, stored: str) -> None:
    assert redact(said, ALL) == stored


def test_what_is_not_personal_data_is_left_alone() -> None:
    # Sixteen digits that fail the Luhn check: not a card (still a long digit run).
    assert redact("order 4111 1111 1111 1112", RedactionSettings(kinds=[Kind.CARD])) == (
        "order 4111 1111 1111 1112"
    )
    assert redact("order 1234 is late", ALL) == "order 1234 is late"  # below min_digits
    assert redact("call me at 5 pm", ALL) == "call me at 5 pm"
    assert redact("anything", None) == "anything"
    assert redact("4111111111111111", RedactionSettings()) == "4111111111111111"  # nothing on


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_a_bad_pattern_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"patterns\[1\]: not a regular expression"):
        RedactionSettings(patterns=["ok", "(unclosed"])


def test_an_agent_names_its_redaction() -> None:
    agent = AgentDefinition.model_validate({
        "name": "a", "system_prompt": "p", "llm": {"engine": "scripted"},
        "redaction": {"kinds": ["card", "ssn"]},
    })  # fmt: skip
    assert agent.redaction.kinds == [Kind.CARD, Kind.SSN]
    assert (
        AgentDefinition.model_validate(
            {"name": "a", "system_prompt": "p", "llm": {"engine": "scripted"}}
        ).redaction.active
        is False
    )
