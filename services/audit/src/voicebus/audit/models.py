"""Audit's tables, in its own schema ``audit``.

``call_events`` is append-only: a row is never updated or deleted by the
service, except that erasure replaces a row's ``data`` with a tombstone and sets
``erased_at`` (its hash stays); the primary key on the event id makes a redelivered
event a no-op.
Each row is a link of its call's hash chain (``chain_seq``, ``hash``; see
:mod:`voicebus.contracts.evidence`) and ``calls`` keeps the chain's head and
length. Rows stored before chaining existed have no link (``NULL``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class CallEventRow(SQLModel, table=True):
    """One event of ``VB_EVENTS``, stored once."""

    __tablename__ = "call_events"
    __table_args__ = (
        Index("call_events_by_call", "tenant_id", "call_id", "time"),
        # One link per place in a call's chain: a fork can never be stored.
        Index("call_events_chain", "tenant_id", "call_id", "chain_seq", unique=True),
    )

    id: str = Field(primary_key=True, max_length=64)
    tenant_id: str = Field(max_length=128)
    call_id: str = Field(max_length=128)
    type: str = Field(max_length=64)
    source: str = Field(max_length=256)
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    stream_seq: int | None = Field(default=None, sa_column=Column(BigInteger))
    data: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    chain_seq: int | None = Field(default=None, sa_column=Column(Integer))
    hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    erased_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True))
    )  # set once, when ``data`` became a tombstone (right to erasure, retention)


class CallRow(SQLModel, table=True):
    """One call: its status and the facts that summarize it."""

    __tablename__ = "calls"

    tenant_id: str = Field(primary_key=True, max_length=128)
    call_id: str = Field(primary_key=True, max_length=128)
    status: str = Field(max_length=32)
    direction: str | None = Field(default=None, max_length=16)
    provider: str | None = Field(default=None, max_length=32)
    agent_id: str | None = Field(default=None, max_length=128)
    from_number: str | None = Field(default=None, max_length=64)
    to_number: str | None = Field(default=None, max_length=64)
    initiated_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    started_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    duration_s: float | None = None
    ended_reason: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    chain_head: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    chain_length: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
