"""Linking a batch of new events into their calls' hash chains. Pure: values in, values out.

See :mod:`voicebus.contracts.evidence` for the chain and the canonical form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic_core

from voicebus.contracts import evidence
from voicebus.contracts.events import CallEvent

CallKey = tuple[str, str]
"""``(tenant_id, call_id)``."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """An event to store.

    Attributes:
        event: the parsed event.
        stream_seq: its sequence in ``VB_EVENTS``, when known.
        envelope: its JSON exactly as received (the stored ``data`` is taken from it).
        data: its ``data`` with numbers normalized for the canonical form.
    """

    event: CallEvent
    stream_seq: int | None
    envelope: str
    data: Any

    @classmethod
    def of(cls, event: CallEvent, stream_seq: int | None, envelope: str | bytes) -> Incoming:
        """Build one from an event's JSON.

        Raises:
            voicebus.contracts.evidence.CanonicalFormError: the JSON has no canonical form.
        """
        text = envelope.decode() if isinstance(envelope, bytes) else envelope
        try:
            body = pydantic_core.from_json(envelope, allow_inf_nan=False)
        except ValueError as err:
            raise evidence.CanonicalFormError("not valid JSON") from err
        if not isinstance(body, dict):
            raise evidence.CanonicalFormError("an event is a JSON object")
        # Only ``data`` is hashed as parsed; the other members come from the parsed event.
        return cls(event, stream_seq, text, evidence.normalize(body.get("data")))

    @property
    def key(self) -> CallKey:
        """The call it belongs to."""
        return (self.event.tenant_id, self.event.call_id)

    def link(self) -> evidence.Link:
        """The fields its chain hash covers."""
        e = self.event
        return evidence.Link(e.id, e.type, e.source, e.time, e.tenant_id, e.call_id, self.data)


@dataclass(frozen=True, slots=True)
class Head:
    """Where a call's chain stands: its last hash (None: no link yet) and length."""

    hash: bytes | None
    length: int


@dataclass(frozen=True, slots=True)
class Linked:
    """A new event with its place in the chain."""

    item: Incoming
    seq: int
    hash: bytes


def link(
    items: Iterable[Incoming], heads: Mapping[CallKey, Head]
) -> tuple[list[Linked], dict[CallKey, Head]]:
    """Chain new events after their calls' heads, in the order given.

    Args:
        items: new events (no repeats), in stream order.
        heads: each call's head as stored (missing: a call with no link yet).

    Returns:
        The linked events, and the new head of every call that got one.
    """
    hashes: dict[CallKey, bytes] = {}
    lengths: dict[CallKey, int] = {}
    out: list[Linked] = []
    sha256 = hashlib.sha256
    for item in items:
        e = item.event
        key = (e.tenant_id, e.call_id)
        previous = hashes.get(key)
        if previous is None:
            head = heads.get(key)
            stored = head.hash if head is not None else None
            previous = stored if stored is not None else evidence.genesis(*key)
            lengths[key] = head.length if head is not None else 0
        body = evidence.canonical_of(e.id, e.type, e.source, e.time, *key, item.data)
        digest = sha256(previous + body).digest()
        seq = lengths[key] + 1
        out.append(Linked(item, seq, digest))
        hashes[key], lengths[key] = digest, seq
    return out, {key: Head(hashes[key], lengths[key]) for key in hashes}
