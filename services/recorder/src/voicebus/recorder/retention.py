"""Retention of recordings in the recordings directory: delete those of calls started
before a cut-off.

A call's start is read from its id (UUIDv7 carries its creation time); a file whose name
is no such id is dated by its modification time. Files of calls still recorded (a live
call here, or a marker left for a takeover) are kept. Objects in a bucket are expired by
the bucket's own lifecycle rule on the tenant's prefix, not here.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from voicebus.contracts.ids import id_time_ms
from voicebus.recorder.recording import marker_of


def started_at(path: Path) -> datetime:
    """When the recording's call started (its id's time, else the file's mtime)."""
    try:
        parsed = uuid.UUID(path.stem)
    except ValueError:
        parsed = None
    if parsed is not None and parsed.version == 7:
        return datetime.fromtimestamp(id_time_ms(path.stem) / 1000, tz=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


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
