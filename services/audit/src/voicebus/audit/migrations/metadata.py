"""Audit's tables in a metadata of their own (``SQLModel.metadata`` is process-wide)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from voicebus.audit.models import CallEventRow, CallRow

# Importing the models adds their tables to SQLModel.metadata; naming them keeps the import.
MODELS = (CallEventRow, CallRow)
TABLES = ("call_events", "calls")
"""The tables those models define."""


def target_metadata() -> MetaData:
    """A metadata holding copies of audit's tables only."""
    metadata = MetaData()
    for name in TABLES:
        SQLModel.metadata.tables[name].to_metadata(metadata)
    return metadata
