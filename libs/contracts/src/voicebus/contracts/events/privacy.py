"""Privacy events: a caller's personal data was erased.

An erasure concerns no call: the event carries the erasure's own id in the call slot
(``vb.evt.<tenant>.<erasure>.caller.erased``), so audit keeps it as evidence with a
chain of its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope


class CallerErasedData(Data):
    """Data of ``caller.erased.v1``: what each owner erased. Never the number itself."""

    number_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description='sha256("voicebus.erasure.v1" 0x00 tenant 0x00 number), hex '
        "(voicebus.contracts.erasure.number_digest).",
        examples=["5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"],
    )
    audit_calls: int = Field(ge=0, description="Calls whose audit record was erased.")
    audit_events: int = Field(ge=0, description="Stored events whose data was erased.")
    recordings: int = Field(ge=0, description="Recordings deleted.")
    memory_profiles: int = Field(ge=0, description="Caller memory profiles deleted (0 or 1).")
    campaign_contacts: int = Field(ge=0, description="Campaign contacts deleted.")
    campaign_attempts: int = Field(ge=0, description="Campaign dial attempts deleted.")
    webhook_deliveries: int = Field(
        default=0,
        ge=0,
        description="Webhook deliveries of those calls deleted from the edge's outbox and log "
        "(pending ones are never sent).",
    )


class CallerErased(Envelope):
    """A caller's personal data was erased on request (right to erasure)."""

    type: Literal["caller.erased.v1"] = "caller.erased.v1"
    data: CallerErasedData
