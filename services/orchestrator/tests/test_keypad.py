"""Keypad digits into inputs: terminator, maximum length, pauses in dialing strings. Pure."""

from __future__ import annotations

import pytest

from voicebus.orchestrator.keypad import KeypadRules, push

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("buffer", "keys", "rules", "expected"),
    [
        ("", "12", KeypadRules(), ("12", [])),
        ("12", "34#", KeypadRules(), ("", ["1234"])),
        ("", "#", KeypadRules(), ("", [])),  # a lone terminator completes nothing
        ("", "123456", KeypadRules(max_length=4), ("56", ["1234"])),
        ("", "1w2*", KeypadRules(terminator="*"), ("", ["12"])),
        ("", "12#3", KeypadRules(terminator=None, max_length=8), ("12#3", [])),
        ("9", "a#", KeypadRules(), ("", ["9A"])),
    ],
)
def test_push(buffer: str, keys: str, rules: KeypadRules, expected: tuple[str, list[str]]) -> None:
    assert push(buffer, keys, rules) == expected
