"""Right to erasure: a caller's personal data erased by number, owner by owner.

The edge asks each owner in turn (``DELETE /api/v1/callers/{number}``): campaigns
(contacts and their attempts), audit (the calls where the number is the caller or the
callee: their events' data becomes a tombstone, their numbers are cleared), the
recorder (those calls' recordings) and the orchestrator's caller memory
(``vb.rpc.orchestrator.memory.delete``). The edge then publishes
:class:`~voicebus.contracts.events.CallerErased`, which names the number only by
:func:`number_digest`.

Every request names its tenant; another tenant's data is never touched.
"""

from __future__ import annotations

import hashlib
from typing import Final

from pydantic import Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import CallId, Data, TenantId
from voicebus.contracts.rpc import CALLER_NUMBER_PATTERN, Reply

AUDIT_ERASE: Final = subjects.rpc("audit", "callers", "erase")
"""Erase a caller's calls from audit: request :class:`EraseCaller`, reply :class:`AuditErased`."""
CAMPAIGNS_ERASE: Final = subjects.rpc("campaigns", "callers", "erase")
"""Erase a number's contacts and attempts: :class:`EraseCaller` → :class:`CampaignsErased`."""
RECORDINGS_ERASE: Final = subjects.rpc("recorder", "recordings", "erase")
"""Delete calls' recordings: request :class:`EraseRecordings`, reply :class:`RecordingsErased`."""

MAX_CALLS: Final = 10_000
"""Most call ids one erasure request carries (the edge pages beyond it)."""

_DIGEST_TAG: Final = b"voicebus.erasure.v1"


def number_digest(tenant_id: str, number: str) -> str:
    """``sha256("voicebus.erasure.v1" 0x00 tenant 0x00 number)``, hex.

    Pseudonymous, not anonymous: phone numbers are few enough to be guessed, so the
    digest proves an erasure of a *known* number without naming it in the record.
    """
    seed = b"\x00".join((_DIGEST_TAG, tenant_id.encode(), number.encode()))
    return hashlib.sha256(seed).hexdigest()


class EraseCaller(Data):
    """Request body of ``vb.rpc.audit.callers.erase`` and ``vb.rpc.campaigns.callers.erase``."""

    tenant_id: TenantId
    number: str = Field(
        pattern=CALLER_NUMBER_PATTERN,
        description="The number whose data is erased, as calls carried it (E.164). Personal data.",
        examples=["+14155550100"],
    )


class AuditErased(Reply):
    """Reply of ``vb.rpc.audit.callers.erase``."""

    calls: int = Field(default=0, ge=0, description="Calls whose record was erased.")
    events: int = Field(default=0, ge=0, description="Stored events whose data was erased.")
    call_ids: list[CallId] = Field(
        default_factory=list, max_length=MAX_CALLS, description="The calls erased."
    )


class CampaignsErased(Reply):
    """Reply of ``vb.rpc.campaigns.callers.erase``."""

    contacts: int = Field(default=0, ge=0, description="Contacts deleted.")
    attempts: int = Field(default=0, ge=0, description="Dial attempts deleted.")
    call_ids: list[CallId] = Field(
        default_factory=list, max_length=MAX_CALLS, description="Calls of those attempts."
    )


class EraseRecordings(Data):
    """Request body of ``vb.rpc.recorder.recordings.erase``."""

    tenant_id: TenantId
    call_ids: list[CallId] = Field(
        max_length=MAX_CALLS, description="Calls whose recordings are deleted."
    )


class RecordingsErased(Reply):
    """Reply of ``vb.rpc.recorder.recordings.erase``."""

    recordings: int = Field(default=0, ge=0, description="Recordings deleted.")
