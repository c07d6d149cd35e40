"""Request/reply to verify calls' hash chains (``vb.rpc.audit.chains.verify``).

Audit recomputes each call's chain from its stored rows (see
:mod:`voicebus.contracts.evidence`) and reports the first link that does not
match. One call by id, or every call of a tenant stored since a time, a page at
a time.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, model_validator

from voicebus.contracts import subjects
from voicebus.contracts.events._base import CallId, Data, TenantId, UtcTime
from voicebus.contracts.rpc import Reply

CHAINS_VERIFY: Final = subjects.rpc("audit", "chains", "verify")
"""Verify chains: request :class:`VerifyChains`, reply :class:`ChainReport`."""


class VerifyChains(Data):
    """Request body of ``vb.rpc.audit.chains.verify``: one call, or calls since a time."""

    tenant_id: TenantId
    call_id: CallId | None = Field(default=None, description="Verify this call only.")
    since: UtcTime | None = Field(
        default=None,
        description="Verify every call of the tenant that had events stored since then.",
        examples=["2026-11-21T00:00:00Z"],
    )
    after: CallId | None = Field(default=None, description="Cursor: calls after this id.")
    limit: int = Field(default=100, ge=1, le=1000, description="Calls per page.", examples=[100])

    @model_validator(mode="after")
    def _one_selection(self) -> VerifyChains:
        if (self.call_id is None) == (self.since is None):
            raise ValueError("give either call_id or since")
        return self


class ChainResult(Data):
    """What recomputing one call's chain found."""

    call_id: CallId
    ok: bool = Field(description="Every link and the head match.", examples=[True])
    length: int = Field(ge=0, description="Links checked.", examples=[42])
    head: str = Field(description="The recomputed head, hex.", examples=["9f86d081…"])
    broken_at: int | None = Field(
        default=None, description="Chain position (from 1) of the first link that does not match."
    )
    event_id: str | None = Field(default=None, max_length=64, description="That event's id.")
    problem: str | None = Field(default=None, max_length=512, description="What is wrong there.")
    unchained: int = Field(
        default=0, ge=0, description="Events stored before chaining existed (not covered)."
    )
    erased: int = Field(
        default=0,
        ge=0,
        description="Links whose data was erased (right to erasure): their stored hash is "
        "taken as is; every other link is still recomputed.",
    )


class ChainReport(Reply):
    """Reply of ``vb.rpc.audit.chains.verify``."""

    results: list[ChainResult] = Field(default_factory=list, description="By call id.")
    next_after: str | None = Field(default=None, description="Cursor of the next page, if any.")
