"""A call's events as evidence: a hash chain over a canonical form. Pure: no I/O.

Every event audit stores is a link of its call's chain::

    h(0) = sha256("voicebus.chain.v1" 0x00 tenant_id 0x00 call_id)
    h(n) = sha256(h(n-1) ‖ canonical(event n))

so changing, removing, inserting or reordering any stored event changes every
hash after it, and the head (the last hash, kept with the call) no longer matches.

The canonical form (version 1) of an event is the UTF-8 of a JSON object with
exactly the members ``call_id``, ``data``, ``id``, ``source``, ``tenant_id``,
``time`` and ``type``, written with:

- members sorted by key (Unicode code points), at every level;
- no whitespace (``,`` and ``:`` separators), non-ASCII characters as
  themselves (not ``\\u`` escapes), the JSON escapes of Python's ``json``;
- ``time`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds);
- every number as an IEEE-754 double, as JavaScript reads JSON: an integral
  value below 2**53 in magnitude is written as an integer, any other value in
  its shortest round-trip form (Python's ``repr``). So ``100``, ``100.0`` and
  ``1e2`` are one number, as they are once PostgreSQL's ``jsonb`` stored them;
  NaN and infinities are not JSON and are refused.

The form is computed from the values as stored (``jsonb`` keeps values, not
formatting), so anyone can recompute a chain from the rows alone.

An **erased** link (right to erasure: its ``data`` replaced by a tombstone) cannot be
recomputed; it keeps its stored hash, which verification takes as that link's value
and continues from. So every link that is not erased is still checked against its
predecessor, and an erased link whose hash was changed breaks the next link (or the
head). What is not detectable: a link marked erased whose content is gone, by
design.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pydantic_core

from voicebus.contracts.errors import ContractError

VERSION: Final = 1
HASH_BYTES: Final = 32
_GENESIS_TAG: Final = b"voicebus.chain.v1"
_SAFE_INT: Final = 2**53
_ZERO: Final = timedelta(0)
_DATA: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_STRING: Final = json.encoder.encode_basestring  # C-accelerated where available


class CanonicalFormError(ContractError):
    """An event has no canonical form (a number that is not finite, invalid text)."""


def _number_from_float(text: str) -> int | float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise CanonicalFormError(f"number {text[:32]!r} is not finite")
    if value.is_integer() and abs(value) < _SAFE_INT:
        return int(value)
    return value


def load(text: str | bytes) -> Any:
    """Parse JSON with every number normalized as the canonical form wants.

    Raises:
        CanonicalFormError: not JSON (a lone surrogate included), or a number that is
            not finite.
    """
    try:
        value = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as err:
        raise CanonicalFormError("not valid JSON") from err
    return normalize(value)


def normalize(value: Any) -> Any:
    """A JSON-like Python value with its numbers as the canonical form writes them."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: normalize(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [normalize(v) for v in value]
    if kind is int:
        return value if -_SAFE_INT < value < _SAFE_INT else _number_from_float(str(value))
    if kind is float:
        if not math.isfinite(value):
            raise CanonicalFormError(f"number {value!r} is not finite")
        return int(value) if value.is_integer() and -_SAFE_INT < value < _SAFE_INT else value
    if isinstance(value, Mapping):
        return {k: normalize(v) for k, v in value.items()}
    raise CanonicalFormError(f"{kind.__name__} is not a JSON value")


def utc_text(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if when.tzinfo is not UTC:
        offset = when.utcoffset()
        if offset is None:
            raise CanonicalFormError("time carries no time zone")
        if offset != _ZERO:
            when = when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")[:26] + "Z"


@dataclass(frozen=True, slots=True)
class Link:
    """The fields of one stored event that its chain hash covers.

    Attributes:
        data: the event's ``data``, numbers normalized (:func:`load` / :func:`normalize`).
    """

    id: str
    type: str
    source: str
    time: datetime
    tenant_id: str
    call_id: str
    data: Any


def canonical(link: Link) -> bytes:
    """The canonical form (version 1) of one event.

    Raises:
        CanonicalFormError: the event has none (see the module's rules).
    """
    return canonical_of(
        link.id, link.type, link.source, link.time, link.tenant_id, link.call_id, link.data
    )


def canonical_of(
    event_id: str,
    event_type: str,
    source: str,
    time: datetime,
    tenant_id: str,
    call_id: str,
    data: Any,
) -> bytes:
    """:func:`canonical` from the fields themselves (no :class:`Link` to build).

    The members are written in their sorted order by hand (one encoder call for
    ``data`` only): the same bytes as ``json.dumps(..., sort_keys=True)`` of the
    whole object, at a third of the cost.

    Raises:
        CanonicalFormError: the event has none (see the module's rules).
    """
    try:
        text = "".join(
            (
                '{"call_id":', _STRING(call_id),
                ',"data":', _DATA.encode(data),
                ',"id":', _STRING(event_id),
                ',"source":', _STRING(source),
                ',"tenant_id":', _STRING(tenant_id),
                ',"time":"', utc_text(time),
                '","type":', _STRING(event_type), "}",
            )
        )  # fmt: skip
        return text.encode("utf-8")
    except (ValueError, TypeError, RecursionError) as err:  # UnicodeEncodeError is a ValueError
        raise CanonicalFormError(f"no canonical form: {type(err).__name__}") from err


def genesis(tenant_id: str, call_id: str) -> bytes:
    """``h(0)`` of a call's chain: distinct per call, so no link fits another call's chain."""
    seed = b"\x00".join((_GENESIS_TAG, tenant_id.encode(), call_id.encode()))
    return hashlib.sha256(seed).digest()


def next_hash(previous: bytes, link: Link) -> bytes:
    """``h(n) = sha256(h(n-1) ‖ canonical(event n))``."""
    return hashlib.sha256(previous + canonical(link)).digest()


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A stored event with its place and hash in the chain.

    Attributes:
        erased: its data was erased; its stored hash stands for it.
    """

    seq: int
    hash: bytes | None
    link: Link
    erased: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What recomputing one call's chain found.

    Attributes:
        ok: every link and the head match.
        length: links checked.
        broken_at: the chain position (1-based) of the first link that does not match.
        event_id: that event's id.
        problem: what is wrong there (or with the head).
        head: the recomputed head.
        erased: erased links taken as stored.
    """

    ok: bool
    length: int
    head: bytes
    broken_at: int | None = None
    event_id: str | None = None
    problem: str | None = None
    erased: int = 0


def verify(
    tenant_id: str,
    call_id: str,
    links: Iterable[StoredLink],
    head: bytes | None,
    length: int | None,
) -> Verdict:
    """Recompute a call's chain from its stored events and compare every hash and the head.

    Args:
        tenant_id: the call's tenant.
        call_id: the call.
        links: the stored events in chain order (by ``seq``).
        head: the head stored with the call.
        length: the chain length stored with the call.
    """
    current = genesis(tenant_id, call_id)
    count = erased = 0
    for stored in links:
        count += 1
        if stored.seq != count:
            problem = f"link {count} is missing (the next stored link is {stored.seq})"
            return Verdict(False, count - 1, current, count, stored.link.id, problem, erased)
        if stored.erased:
            if stored.hash is None or len(stored.hash) != HASH_BYTES:
                return Verdict(False, count - 1, current, count, stored.link.id,
                               "an erased link has no hash", erased)  # fmt: skip
            current, erased = stored.hash, erased + 1
            continue
        try:
            current = next_hash(current, stored.link)
        except CanonicalFormError as err:
            return Verdict(False, count - 1, current, count, stored.link.id, str(err), erased)
        if stored.hash != current:
            return Verdict(False, count - 1, current, count, stored.link.id,
                           "stored hash does not match the event as stored", erased)  # fmt: skip
    if length is not None and length != count:
        return Verdict(False, count, current, count + 1 if length > count else length, None,
                       f"the call's chain has {length} links, {count} are stored",
                       erased)  # fmt: skip
    if head is not None and head != current:
        return Verdict(False, count, current, count, None,
                       "the head stored with the call does not match the last link",
                       erased)  # fmt: skip
    return Verdict(True, count, current, erased=erased)
