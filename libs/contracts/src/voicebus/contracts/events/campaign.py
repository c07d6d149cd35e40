"""Campaign events: every dial decision, so the audit trail shows why a call was or was not placed.

Decisions about one attempt carry the attempt's pre-assigned call id in the
subject (``vb.evt.<tenant>.<call>.attempt.dialed``), so the audit trail of a
call starts before the phone rings. Facts about a whole campaign
(``campaign.progress``) have no call: they carry the campaign id in the
call slot.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope, UtcTime

_CAMPAIGN = Field(min_length=1, max_length=64, description="Campaign id.", examples=["cmp-42"])
_CONTACT = Field(ge=1, description="Contact id within its campaign.", examples=[17])
_NUMBER = Field(
    max_length=32, description="Number concerned, E.164. Personal data.", examples=["+14155550199"]
)


class AttemptOutcome(StrEnum):
    """How one dial attempt ended, as campaigns counts it."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    MACHINE = "machine"
    VOICEMAIL = "voicemail"
    TIMEOUT = "timeout"


class DncCheckedData(Data):
    """Data of ``dnc.checked.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    to_number: str = _NUMBER
    blocked: bool = Field(description="The number is on a do-not-call list.", examples=[False])
    list_scope: Literal["tenant", "campaign"] | None = Field(
        default=None, description="Which list matched, when blocked.", examples=["tenant"]
    )
    stage: Literal["upload", "dial"] = Field(
        description="Scrubbed when the list was uploaded, or right before dialing.",
        examples=["dial"],
    )


class DncChecked(Envelope):
    """A number was checked against the do-not-call lists."""

    type: Literal["dnc.checked.v1"] = "dnc.checked.v1"
    data: DncCheckedData


class WindowCheckedData(Data):
    """Data of ``window.checked.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    allowed: bool = Field(description="Inside the calling window in every zone.", examples=[True])
    time_zones: list[str] = Field(
        description="Callee's time zones, from the number.", examples=[["America/New_York"]]
    )
    local_times: list[str] = Field(
        description="Local time in each zone when checked (ISO 8601 with offset).",
        examples=[["2026-11-23T10:00:00-05:00"]],
    )
    next_opening: UtcTime | None = Field(
        default=None,
        description="When not allowed: the next time inside the window, UTC.",
        examples=["2026-11-24T13:00:00Z"],
    )
    reason: str | None = Field(
        default=None,
        max_length=256,
        description="Why not allowed (outside window, before start, after end).",
        examples=["outside calling window"],
    )


class WindowChecked(Envelope):
    """A contact's calling window was checked in the callee's local time."""

    type: Literal["window.checked.v1"] = "window.checked.v1"
    data: WindowCheckedData


class AttemptScheduledData(Data):
    """Data of ``attempt.scheduled.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    attempt: int = Field(ge=1, description="Number of the attempt planned.", examples=[2])
    not_before: UtcTime = Field(
        description="Earliest time of the attempt, UTC.", examples=["2026-11-23T15:05:00Z"]
    )
    reason: str = Field(
        max_length=256,
        description="Why: a retry after an outcome, or a deferral to the calling window.",
        examples=["retry after busy"],
    )


class AttemptScheduled(Envelope):
    """A contact's next attempt was planned (retry or deferral); it is never dropped."""

    type: Literal["attempt.scheduled.v1"] = "attempt.scheduled.v1"
    data: AttemptScheduledData


class AttemptDialedData(Data):
    """Data of ``attempt.dialed.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    attempt_id: str = Field(max_length=64, description="Attempt id.", examples=["0193a5f2-7c1e"])
    attempt: int = Field(ge=1, description="Attempt number for this contact.", examples=[1])
    to_number: str = _NUMBER
    from_number: str | None = Field(
        default=None, max_length=32, description="Caller id presented.", examples=["+14155550100"]
    )


class AttemptDialed(Envelope):
    """The originate command for an attempt was queued (the call id is the attempt's)."""

    type: Literal["attempt.dialed.v1"] = "attempt.dialed.v1"
    data: AttemptDialedData


class AttemptOutcomeData(Data):
    """Data of ``attempt.outcome.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    attempt_id: str = Field(max_length=64, description="Attempt id.", examples=["0193a5f2-7c1e"])
    attempt: int = Field(ge=1, description="Attempt number.", examples=[1])
    outcome: AttemptOutcome = Field(description="How it ended.", examples=["busy"])
    duration_s: float | None = Field(
        default=None, ge=0, description="Talk time, when answered.", examples=[42.4]
    )
    retry_at: UtcTime | None = Field(
        default=None, description="When a retry is planned; null when final.", examples=[None]
    )
    final: bool = Field(description="No further attempt for this contact.", examples=[False])


class AttemptOutcomeRecorded(Envelope):
    """An attempt ended; ``final`` tells whether the contact is done."""

    type: Literal["attempt.outcome.v1"] = "attempt.outcome.v1"
    data: AttemptOutcomeData


class CampaignProgressData(Data):
    """Data of ``campaign.progress.v1``."""

    campaign_id: str = _CAMPAIGN
    status: str = Field(max_length=16, description="Campaign status.", examples=["running"])
    contacts: int = Field(ge=0, description="Contacts loaded.", examples=[1000])
    by_state: dict[str, int] = Field(
        description="Contacts per state.", examples=[{"pending": 900, "done": 100}]
    )
    by_outcome: dict[str, int] = Field(
        description="Attempts per outcome so far.", examples=[{"answered": 80, "busy": 20}]
    )
    in_flight: int = Field(ge=0, description="Calls being dialed or talking.", examples=[20])
    dialed: int = Field(ge=0, description="Attempts dialed so far.", examples=[120])


class CampaignProgress(Envelope):
    """Live counts of a campaign, every few seconds while it runs (call slot: campaign id)."""

    type: Literal["campaign.progress.v1"] = "campaign.progress.v1"
    data: CampaignProgressData


class NotificationDeliveredData(Data):
    """Data of ``notification.delivered.v1``."""

    campaign_id: str = _CAMPAIGN
    contact_id: int = _CONTACT
    attempt_id: str = Field(max_length=64, description="Attempt id.", examples=["0193a5f2-7c1e"])
    to_machine: bool = Field(
        default=False, description="Left on an answering machine.", examples=[False]
    )
    duration_s: float | None = Field(
        default=None, ge=0, description="Call duration.", examples=[12.0]
    )


class NotificationDelivered(Envelope):
    """A notification campaign's message was played to the callee, then the call hung up."""

    type: Literal["notification.delivered.v1"] = "notification.delivered.v1"
    data: NotificationDeliveredData


class DncRequestedData(Data):
    """Data of ``dnc.requested.v1``."""

    to_number: str | None = Field(
        default=None,
        max_length=32,
        description="Number to block, E.164; the call's callee when null. Personal data.",
        examples=["+14155550199"],
    )
    campaign_id: str | None = Field(
        default=None, max_length=64, description="Campaign of the call, if any.", examples=[None]
    )
    reason: str | None = Field(
        default=None,
        max_length=256,
        description="Why, no personal data.",
        examples=["callee asked not to be called"],
    )
    requested_at: UtcTime | None = Field(
        default=None, description="When the callee asked.", examples=[None]
    )


class DncRequested(Envelope):
    """The callee asked not to be called again; campaigns adds the number to the tenant's list."""

    type: Literal["dnc.requested.v1"] = "dnc.requested.v1"
    data: DncRequestedData
