"""Retention: a tenant's data older than its policy allows is erased by its owners.

The edge keeps each tenant's policy (days per kind of data) and, periodically, asks each
owner to apply it with absolute cut-off times (``vb.rpc.<owner>.retention.apply``):
audit erases events (and, sooner, transcripts) before the cut-off the way an erasure by
number does (tombstones that keep their chain hash), the recorder deletes older
recordings, campaigns deletes older finished contacts with their attempts. Applying
the same cut-offs twice changes nothing the second time.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, TenantId, UtcTime
from voicebus.contracts.rpc import Reply

AUDIT_RETENTION: Final = subjects.rpc("audit", "retention", "apply")
"""Erase old events: request :class:`ApplyRetention`, reply :class:`RetentionApplied`."""
RECORDER_RETENTION: Final = subjects.rpc("recorder", "retention", "apply")
"""Delete old recordings: request :class:`ApplyRetention`, reply :class:`RetentionApplied`."""
CAMPAIGNS_RETENTION: Final = subjects.rpc("campaigns", "retention", "apply")
"""Delete old contacts: request :class:`ApplyRetention`, reply :class:`RetentionApplied`."""

TRANSCRIPT_TYPES: Final = (
    "transcript.partial.v1",
    "transcript.final.v1",
    "agent.reply.v1",
    "agent.speech.interrupted.v1",
    "tool.called.v1",
    "tool.result.v1",
    "dtmf.received.v1",
    "call.analyzed.v1",
)
"""Events that hold what was said or keyed (the ``transcripts`` retention)."""


class ApplyRetention(Data):
    """Request body of ``vb.rpc.<owner>.retention.apply``: erase what is older than each
    cut-off (None: keep that kind)."""

    tenant_id: TenantId
    events_before: UtcTime | None = Field(
        default=None, description="Erase every event stored for a time before this."
    )
    transcripts_before: UtcTime | None = Field(
        default=None, description="Erase events holding speech, keys or tool data before this."
    )
    recordings_before: UtcTime | None = Field(
        default=None, description="Delete recordings of calls started before this."
    )
    contacts_before: UtcTime | None = Field(
        default=None,
        description="Delete finished campaign contacts (and their attempts) last dialed or "
        "due before this.",
    )


class RetentionApplied(Reply):
    """Reply of ``vb.rpc.<owner>.retention.apply``: what was erased now."""

    events: int = Field(default=0, ge=0, description="Events erased.")
    calls: int = Field(default=0, ge=0, description="Calls whose numbers were cleared.")
    recordings: int = Field(default=0, ge=0, description="Recordings deleted.")
    contacts: int = Field(default=0, ge=0, description="Contacts deleted.")
    attempts: int = Field(default=0, ge=0, description="Attempts deleted.")
