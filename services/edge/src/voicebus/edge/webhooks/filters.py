"""Event-type filters of a webhook subscription. Pure.

A filter names event types by their unversioned name (``call.started``), a versioned
one (``call.started.v1``: that version only), or a prefix pattern ending in ``*``
(``call.*``, ``campaign.*``); ``*`` alone is every event. Filters are checked for
their form only, never against the types known today, so a subscription to a type
a newer service publishes (``call.analyzed``) works as soon as the events flow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from voicebus.contracts.subjects import strip_version

MAX_FILTERS: Final = 64
_FILTER: Final = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*|\.v[0-9]+)?)$")


def check_filter(value: str) -> str:
    """``value`` if it is a well-formed filter.

    Raises:
        ValueError: naming the filter and the accepted forms.
    """
    if len(value) > 128 or not _FILTER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an event-type filter: use a type (call.started), a versioned "
            "type (call.started.v1), a prefix (call.*) or * for every event"
        )
    return value


def matches(filters: Iterable[str], event_type: str) -> bool:
    """Whether an event of (versioned) type ``event_type`` passes any of ``filters``."""
    base = strip_version(event_type)
    for pattern in filters:
        if pattern in ("*", event_type, base):
            return True
        if pattern.endswith(".*") and base.startswith(pattern[:-1]):
            return True
    return False


def normalized(filters: Sequence[str]) -> list[str]:
    """Filters without duplicates, in their given order."""
    return list(dict.fromkeys(filters))
