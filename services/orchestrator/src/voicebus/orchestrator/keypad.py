"""Keypad digits, collected into one input: ended by a terminator, a length, or a pause. Pure.

The conversation feeds every ``dtmf.received`` (whether the agent is speaking
or not, so nothing is lost) and runs the inter-digit timer; this module only
decides when an input is complete.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeypadRules:
    """When an input is complete.

    Attributes:
        max_length: complete at this many digits.
        terminator: the key that completes it (not kept), or None.
        timeout_s: a pause this long after a digit completes it.
    """

    max_length: int = 16
    terminator: str | None = "#"
    timeout_s: float = 3.0


def push(buffer: str, keys: str, rules: KeypadRules) -> tuple[str, list[str]]:
    """Add ``keys`` to ``buffer``.

    Returns:
        (what stays buffered, the inputs completed, in order). A terminator on an
        empty buffer completes nothing.
    """
    done: list[str] = []
    for key in keys:
        if rules.terminator is not None and key == rules.terminator:
            if buffer:
                done.append(buffer)
            buffer = ""
            continue
        if key == "w":  # a pause in a dialing string, not a key
            continue
        buffer += key.upper() if key.isalpha() else key
        if len(buffer) >= rules.max_length:
            done.append(buffer)
            buffer = ""
    return buffer, done
