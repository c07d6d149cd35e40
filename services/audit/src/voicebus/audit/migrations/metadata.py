"""Audit's tables in a metadata of their own (``SQLModel.metadata`` is process-wide)."""

from __future__ import annotations

from sqlalchemy import MetaData

from voicebus.audit.models import CallEventRow, CallRow


def target_metadata() -> MetaData:
    """A metadata holding copies of audit's tables only."""
    metadata = MetaData()
    for model in (CallEventRow, CallRow):
        model.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
    return metadata
