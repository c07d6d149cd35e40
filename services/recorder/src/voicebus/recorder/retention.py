"""Retention of recordings in the recordings directory: delete those of calls started
before a cut-off.

A call's start is read from its id (UUIDv7 carries its creation time); a file whose name
is no such id is dated by its modification time. Files of calls still recorded (a live
call here, or a marker left for a takeover) are kept. Objects in a bucket are listed under
the tenant's prefix and dated the same way (by their upload time when the name is no id).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from voicebus.contracts.ids import id_time_ms
from voicebus.recorder.recording import marker_of


def id_time(call_id: str) -> datetime | None:
    """The time inside a UUIDv7 call id (None: not one)."""
    try:
        parsed = uuid.UUID(call_id)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp(id_time_ms(call_id) / 1000, tz=UTC)


def started_at(path: Path) -> datetime:
    """When the recording's call started (its id's time, else the file's mtime)."""
    return id_time(path.stem) or datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def expired_keys(
    listing: list[tuple[str, datetime]], before: datetime, live: Collection[str]
) -> list[str]:
    """Keys of recordings (``…/<call>.wav``) of calls started before ``before``."""
    found = []
    for key, stored in listing:
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".wav"):
            continue
        call_id = name.removesuffix(".wav")
        if call_id not in live and (id_time(call_id) or stored) < before:
            found.append(key)
    return found


def expire(root: Path, tenant_id: str, before: datetime, live: Collection[str]) -> int:
    """Delete ``tenant_id``'s finished recordings of calls started before ``before``."""
    deleted = 0
    for path in sorted((root / tenant_id).glob("*.wav")):
        if path.stem in live or marker_of(path).exists():
            continue
        try:
            if started_at(path) >= before:
                continue
            path.unlink()
        except FileNotFoundError:
            continue  # another instance deleted it first
        deleted += 1
    return deleted
