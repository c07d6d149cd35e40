"""Campaigns over request/reply: ``vb.rpc.campaigns.<resource>.<verb>``.

The campaigns service owns campaigns, contacts, attempts and do-not-call
lists; the REST edge and the ``voicebus campaign`` command ask it here. Every
reply has ``ok`` and either its payload or an :class:`~voicebus.contracts.rpc.RpcError`.

Contacts are uploaded in chunks of whole lines (each well under the NATS
message limit), so a 100,000-row file never sits in memory on either side:
the sender cuts the file at line ends and numbers each chunk's first line;
the service parses each chunk on its own and answers with the running totals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Base64Bytes, Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data, TenantId, UtcTime
from voicebus.contracts.rpc import Reply

E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{1,14}$", examples=["+14155550100"])]
CampaignId = Annotated[
    str,
    AfterValidator(lambda v: subjects.token(v, "campaign id")),
    Field(max_length=64, description="Campaign id.", examples=["cmp-42"]),
]


def _rpc(resource: str, verb: str) -> str:
    return subjects.rpc("campaigns", resource, verb)


CAMPAIGNS_CREATE: Final = _rpc("campaigns", "create")
"""Request :class:`CreateCampaign`, reply :class:`CampaignReply`."""
CAMPAIGNS_GET: Final = _rpc("campaigns", "get")
"""Request :class:`CampaignRef`, reply :class:`CampaignReply`."""
CAMPAIGNS_LIST: Final = _rpc("campaigns", "list")
"""Request :class:`ListCampaigns`, reply :class:`CampaignListReply`."""
CAMPAIGNS_START: Final = _rpc("campaigns", "start")
"""Request :class:`CampaignRef`, reply :class:`CampaignReply` (draft → scheduled/running)."""
CAMPAIGNS_PAUSE: Final = _rpc("campaigns", "pause")
"""Request :class:`CampaignRef`, reply :class:`CampaignReply`."""
CAMPAIGNS_RESUME: Final = _rpc("campaigns", "resume")
"""Request :class:`CampaignRef`, reply :class:`CampaignReply`."""
CAMPAIGNS_CANCEL: Final = _rpc("campaigns", "cancel")
"""Request :class:`CampaignRef`, reply :class:`CampaignReply`."""
CAMPAIGNS_PROGRESS: Final = _rpc("campaigns", "progress")
"""Request :class:`CampaignRef`, reply :class:`ProgressReply`."""
CAMPAIGNS_REPORT: Final = _rpc("campaigns", "report")
"""Request :class:`ReportPageRequest`, reply :class:`ReportReply` (one page, by contact id)."""
CONTACTS_UPLOAD: Final = _rpc("contacts", "upload")
"""Request :class:`UploadChunk`, reply :class:`UploadReply`."""
DNC_ADD: Final = _rpc("dnc", "add")
"""Request :class:`DncChange`, reply :class:`DncReply`."""
DNC_REMOVE: Final = _rpc("dnc", "remove")
"""Request :class:`DncChange`, reply :class:`DncReply`."""
DNC_LIST: Final = _rpc("dnc", "list")
"""Request :class:`DncListRequest`, reply :class:`DncListReply` (one page, by number)."""

RPC_SUBJECTS: Final = (
    CAMPAIGNS_CREATE,
    CAMPAIGNS_GET,
    CAMPAIGNS_LIST,
    CAMPAIGNS_START,
    CAMPAIGNS_PAUSE,
    CAMPAIGNS_RESUME,
    CAMPAIGNS_CANCEL,
    CAMPAIGNS_PROGRESS,
    CAMPAIGNS_REPORT,
    CONTACTS_UPLOAD,
    DNC_ADD,
    DNC_REMOVE,
    DNC_LIST,
)


class CampaignMode(StrEnum):
    """What a call of the campaign does."""

    CONVERSATION = "conversation"
    NOTIFICATION = "notification"


MODE_CONTEXT_KEY: Final = "campaign_mode"
"""Context variable of a campaign call whose campaign speaks itself (notification mode)."""


def campaign_speaks(context: Mapping[str, str]) -> bool:
    """Whether the campaign speaks on a call with this context, so no agent converses."""
    return context.get(MODE_CONTEXT_KEY) == CampaignMode.NOTIFICATION.value


class CampaignStatus(StrEnum):
    """draft → scheduled → running ⇄ paused → completed / cancelled."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class AmdPolicy(StrEnum):
    """What to do when an answering machine picks up."""

    HANG_UP = "hang_up"
    VOICEMAIL = "voicemail"
    CONTINUE = "continue"


class Weekday(StrEnum):
    """Days of the week, as window keys."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class TimeRange(Data):
    """A local-time range within one day, start inclusive, end exclusive."""

    start: time = Field(description="Local start.", examples=["09:00"])
    end: time = Field(description="Local end (after start).", examples=["20:00"])


def _default_windows() -> dict[Weekday, list[TimeRange]]:
    day = [TimeRange(start=time(9), end=time(20))]
    return {d: list(day) for d in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)}


class RetryRule(Data):
    """Retries after one outcome."""

    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts in all, incl. first.", examples=[3]
    )
    delay_s: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Wait before retrying.", examples=[3600]
    )


class RetryPolicy(Data):
    """Retries per outcome; an outcome without a rule is final."""

    busy: RetryRule | None = Field(default_factory=lambda: RetryRule(max_attempts=3, delay_s=600))
    no_answer: RetryRule | None = Field(default_factory=lambda: RetryRule(max_attempts=3))
    failed: RetryRule | None = Field(default_factory=lambda: RetryRule(max_attempts=2))
    machine: RetryRule | None = Field(default=None)
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Cap over all outcomes.", examples=[5]
    )


class Recurrence(Data):
    """Dial only while a cron schedule's run is open."""

    cron: str = Field(
        min_length=9,
        max_length=128,
        description="5-field cron, campaign zone.",
        examples=["0 9 * * 1-5"],
    )
    duration_minutes: int = Field(
        default=240, ge=1, le=7 * 1440, description="How long each run stays open.", examples=[240]
    )


class CampaignSpec(Data):
    """Everything a campaign is configured with."""

    name: str = Field(min_length=1, max_length=256, examples=["November renewals"])
    agent_id: str = Field(min_length=1, max_length=128, examples=["demo"])
    caller_ids: list[E164] = Field(
        min_length=1, max_length=100, description="Numbers to present, used in turn."
    )
    provider: str | None = Field(default=None, max_length=32, examples=["twilio"])
    mode: CampaignMode = Field(default=CampaignMode.CONVERSATION)
    message: str | None = Field(
        default=None, max_length=4096, description="Notification mode: the text spoken."
    )
    voicemail_message: str | None = Field(
        default=None, max_length=4096, description="AMD voicemail: text left after the beep."
    )
    windows: dict[Weekday, list[TimeRange]] = Field(
        default_factory=_default_windows,
        description="Calling window per weekday, in the callee's local time. US numbers are "
        "further limited to 08:00-21:00 local.",
    )
    default_time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="Zone for numbers whose zone is unknown.",
        examples=["Europe/London"],
    )
    start_at: UtcTime | None = Field(default=None, description="Do not dial before.")
    end_at: UtcTime | None = Field(default=None, description="Do not dial after; then complete.")
    recurrence: Recurrence | None = Field(default=None)
    concurrency: int = Field(default=10, ge=1, le=1000, description="Calls at once.")
    caller_id_concurrency: int | None = Field(
        default=None, ge=1, le=1000, description="Calls at once per caller id."
    )
    pacing_cps: float = Field(default=5.0, gt=0, le=10000, description="Dials per second.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    amd: AmdPolicy = Field(default=AmdPolicy.HANG_UP)
    detect_machine: bool = Field(default=True, description="Ask for machine detection.")
    ring_timeout_s: int = Field(default=30, ge=5, le=120)


class Campaign(Data):
    """A campaign as stored."""

    campaign_id: CampaignId
    tenant_id: TenantId
    status: CampaignStatus
    spec: CampaignSpec
    created_at: UtcTime
    updated_at: UtcTime


class CreateCampaign(Data):
    """Request of ``campaigns.create``."""

    tenant_id: TenantId
    spec: CampaignSpec


class CampaignRef(Data):
    """Request naming one campaign."""

    tenant_id: TenantId
    campaign_id: CampaignId


class ListCampaigns(Data):
    """Request of ``campaigns.list``."""

    tenant_id: TenantId
    status: CampaignStatus | None = None


class CampaignReply(Reply):
    """Reply carrying one campaign."""

    campaign: Campaign | None = None


class CampaignListReply(Reply):
    """Reply of ``campaigns.list``."""

    campaigns: list[Campaign] = Field(default_factory=list)


class Progress(Data):
    """Live counts of a campaign."""

    campaign_id: CampaignId
    status: CampaignStatus
    contacts: int = Field(ge=0)
    by_state: dict[str, int] = Field(description="pending, dialing, done, dnc, expired, ...")
    by_outcome: dict[str, int] = Field(description="Attempts per outcome.")
    in_flight: int = Field(ge=0)
    dialed: int = Field(ge=0)


class ProgressReply(Reply):
    """Reply of ``campaigns.progress``."""

    progress: Progress | None = None


class UploadFormat(StrEnum):
    """Contact file formats."""

    CSV = "csv"
    JSON = "json"


class UploadChunk(Data):
    """Request of ``contacts.upload``: whole lines of a contact file.

    CSV: the first chunk's first line is the header; later chunks repeat it in
    ``header``. JSON: one object per line (JSON Lines; a pretty array with one
    object per line works too).
    """

    tenant_id: TenantId
    campaign_id: CampaignId
    upload_id: str = Field(min_length=1, max_length=64, description="Same for every chunk.")
    format: UploadFormat = UploadFormat.CSV
    seq: int = Field(ge=0, description="Chunk number from 0.")
    first_line: int = Field(ge=1, description="File line number of the chunk's first line.")
    header: str | None = Field(
        default=None, max_length=65536, description="CSV header line for chunks after the first."
    )
    data: Base64Bytes = Field(description="The lines, raw bytes (base64 in JSON).")
    final: bool = Field(default=False, description="Last chunk: the reply holds the totals.")


class RowError(Data):
    """A row that was not loaded, and why."""

    line: int = Field(ge=1, description="Line number in the file.", examples=[17])
    reason: str = Field(max_length=512, examples=["not a valid phone number"])


class UploadReport(Data):
    """Running totals of one upload."""

    upload_id: str
    rows: int = Field(ge=0, description="Data rows read.")
    loaded: int = Field(ge=0, description="New contacts.")
    merged: int = Field(ge=0, description="Rows merged into an existing contact (duplicates).")
    dnc: int = Field(ge=0, description="Rows on a do-not-call list (loaded as dnc).")
    rejected: int = Field(ge=0, description="Rows refused (see errors).")
    errors: list[RowError] = Field(default_factory=list, description="First errors (≤ 1000).")
    header: str | None = Field(default=None, description="The CSV header, to send with chunks.")


class UploadReply(Reply):
    """Reply of ``contacts.upload``."""

    report: UploadReport | None = None


class ReportPageRequest(Data):
    """Request of ``campaigns.report``: contacts after ``after_contact_id``."""

    tenant_id: TenantId
    campaign_id: CampaignId
    after_contact_id: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=5000)


class ReportRow(Data):
    """One contact's final line in the campaign report."""

    contact_id: int
    phone: str = Field(description="E.164. Personal data.")
    state: str
    attempts: int
    outcome: str | None
    duration_s: float | None
    recording_id: str | None
    last_call_id: str | None
    last_attempt_at: datetime | None
    disposition: str | None = Field(
        default=None, description="The last call's disposition code (its call.analyzed)."
    )
    success: str | None = Field(
        default=None,
        description="The last call's success evaluation: pass, fail, or a score from 0 to 10.",
        examples=["pass", "7.5"],
    )


REPORT_COLUMNS: Final = tuple(ReportRow.model_fields)
"""CSV header of the campaign report."""

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER: Final = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def csv_cell(value: object) -> str:
    """One cell of a CSV people open in a spreadsheet, safe from formula injection.

    A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return would be
    run as a formula by Excel, LibreOffice or Google Sheets; it is prefixed with a
    single quote, which they show as text. A plain number (``+14155550100``,
    ``-1.5``) cannot be a formula and is left as it is. None is an empty cell.
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def report_cells(row: ReportRow) -> list[str]:
    """A report row as CSV cells in :data:`REPORT_COLUMNS` order, each :func:`csv_cell`-safe."""
    values = row.model_dump(mode="json")
    return [csv_cell(values[name]) for name in REPORT_COLUMNS]


class ReportReply(Reply):
    """Reply of ``campaigns.report``."""

    rows: list[ReportRow] = Field(default_factory=list)
    next_after: int | None = Field(default=None, description="Cursor of the next page; null: end.")


class DncChange(Data):
    """Request of ``dnc.add`` / ``dnc.remove``."""

    tenant_id: TenantId
    campaign_id: CampaignId | None = Field(default=None, description="Null: the tenant's list.")
    numbers: list[str] = Field(
        min_length=1,
        max_length=10000,
        description="Numbers, any format with a + prefix. Personal data.",
    )
    reason: str | None = Field(default=None, max_length=256)


class DncReply(Reply):
    """Reply of ``dnc.add`` / ``dnc.remove``."""

    changed: int = 0
    invalid: list[str] = Field(default_factory=list, description="Numbers not understood.")


class DncListRequest(Data):
    """Request of ``dnc.list``: one page of a do-not-call list, in number order."""

    tenant_id: TenantId
    campaign_id: CampaignId | None = Field(default=None, description="Null: the tenant's list.")
    after: str | None = Field(
        default=None,
        max_length=32,
        description="Cursor: the last number of the previous page; null: from the start.",
    )
    limit: int = Field(default=200, ge=1, le=1000, description="Numbers per page.")


class DncEntry(Data):
    """One number on a do-not-call list."""

    phone: str = Field(description="E.164. Personal data.", examples=["+14155550100"])
    reason: str | None = Field(default=None, max_length=256, examples=["asked not to be called"])
    added_at: UtcTime = Field(description="When it was added.")


class DncListReply(Reply):
    """Reply of ``dnc.list``."""

    entries: list[DncEntry] = Field(default_factory=list)
    next_after: str | None = Field(default=None, description="Cursor of the next page; null: end.")
