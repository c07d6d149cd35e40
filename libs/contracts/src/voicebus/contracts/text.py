"""Control characters in text: refused by every contract, stripped from outside input.

A NUL in one event once stopped audit for every tenant (PostgreSQL's ``jsonb``
and ``text`` refuse ``\\u0000``), and escape sequences in stored text reach
terminals and log viewers. So every model of the bus refuses C0 and C1 control
characters in its strings — keys of mappings included — except the three that
text legitimately holds: tab, line feed and carriage return.

Producers that relay text they do not control (a provider's webhook, an STT
engine, an LLM, a tool's HTTP answer) pass it through :func:`strip_control` or
:func:`scrub` first; the REST edge answers 422 with the error the models raise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 controls but tab, LF and CR; DEL; C1 controls."""
NO_CONTROL_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
"""The same rule as a field ``pattern`` (checked by pydantic-core, no Python call)."""
ALLOWED: Final = "tab, line feed and carriage return"
_MAX_DEPTH: Final = 64

T = TypeVar("T")


CLEAN_JSON: Final = "voicebus.clean_json"
"""Validation-context key: the JSON being validated can hold no refused control character
(see :func:`json_may_hold_control`), so the per-model check is skipped."""
_JSON_SUSPECTS: Final = (b"\\u00", b"\\b", b"\\f", b"\x7f", b"\xc2")


def json_may_hold_control(raw: bytes | str) -> bool:
    """Whether JSON text could decode to a refused control character.

    JSON escapes every C0 control (``\\u00XX``, or ``\\b``/``\\f``); DEL and C1
    may also appear raw (C1 in UTF-8 starts with byte 0xC2). None of these substrings:
    no control character. A match (``\\u00e9``, an escaped backslash) only means
    "check every field".
    """
    data = raw.encode() if isinstance(raw, str) else raw
    return any(s in data for s in _JSON_SUSPECTS)


def strip_control(text: str) -> str:
    """``text`` without the control characters the contracts refuse."""
    return CONTROL.sub("", text) if CONTROL.search(text) else text


def scrub(value: T) -> T:
    """Strip control characters from every string in a JSON-like value (keys included)."""
    return _scrub(value, 0)  # type: ignore[no-any-return]  # same shape as given


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return strip_control(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {_scrub(k, depth + 1): _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    return value


def find_control(value: object, path: str = "") -> str | None:
    """Where ``value`` holds a refused control character, as a readable path; None if clean.

    Strings, mapping keys and values, and list items are searched (nested models
    are not: they check themselves).

    Args:
        value: a field's value.
        path: the path so far, e.g. ``context``.

    Returns:
        E.g. ``context['note']: U+0000``, or None.
    """
    return _find(value, path, 0)


def _find(value: object, path: str, depth: int) -> str | None:
    if isinstance(value, str):
        found = CONTROL.search(value)
        return f"{path}: U+{ord(found.group()):04X}" if found else None
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
            if isinstance(key, str) and CONTROL.search(key):
                return f"{path} (a key): U+{ord(CONTROL.search(key).group()):04X}"  # type: ignore[union-attr]
            hit = _find(item, where, depth + 1)
            if hit:
                return hit
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            hit = _find(item, f"{path}[{i}]", depth + 1)
            if hit:
                return hit
    return None


def refuse_control(fields: Mapping[str, object]) -> None:
    """Raise ``ValueError`` naming the first field that holds a refused control character.

    Args:
        fields: a model's field values by name (nested models are skipped).
    """
    search = CONTROL.search
    for name, value in fields.items():
        kind = type(value)
        if kind is str:
            if search(value):  # type: ignore[call-overload]  # a str: its type was checked
                _refuse(name, value)
        elif (kind is dict or kind is list or kind is tuple) and _find(value, name, 0):
            _refuse(name, value)


def _refuse(name: str, value: object) -> None:
    raise ValueError(
        f"control character in {_find(value, name, 0)}; text may hold no control characters "
        f"other than {ALLOWED}"
    )
