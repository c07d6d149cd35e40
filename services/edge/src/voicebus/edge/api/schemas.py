"""Request and response bodies of the REST edge that are not bus contracts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from voicebus.contracts.rpc import CallSummary, StoredEvent
from voicebus.contracts.telephony import MAX_CONTEXT_VARS
from voicebus.contracts.text import refuse_control
from voicebus.edge.tenancy.keys import Scope

TOKEN_PATTERN: Final = r"^[A-Za-z0-9_-]{1,128}$"  # noqa: S105 - a regex, not a secret
E164: Final = r"^\+[1-9][0-9]{1,14}$"

TenantIdPath = Annotated[
    str, Path(pattern=TOKEN_PATTERN, max_length=128, description="Tenant id.", examples=["acme"])
]
CallIdPath = Annotated[str, Path(pattern=TOKEN_PATTERN, max_length=128, description="Call id.")]
KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="API key id.")]
ProviderPath = Annotated[
    str, Path(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Provider.", examples=["twilio"])
]
AgentIdPath = Annotated[str, Path(pattern=TOKEN_PATTERN, max_length=128, description="Agent id.")]


class _In(BaseModel):
    """Request bodies: unknown fields are errors, so a typo is not silently ignored; text
    holds no control characters (the contracts' rule, so a 422 names the field here
    rather than a contract model refusing it later)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_control_characters(self) -> Self:
        refuse_control(self.__dict__)
        return self


class TenantCreate(_In):
    """A new tenant."""

    tenant_id: str = Field(
        pattern=TOKEN_PATTERN, description="Id, a subject token.", examples=["acme"]
    )
    name: str = Field(min_length=1, max_length=256, examples=["Acme Inc."])


class TenantOut(BaseModel):
    """A tenant."""

    tenant_id: str
    name: str
    disabled: bool
    created_at: datetime


class TenantPatch(_In):
    """A change to a tenant (operator token only)."""

    disabled: bool = Field(
        description="A disabled tenant's keys are refused (403) until it is enabled again.",
        examples=[True],
    )


class TenantLimitsBody(_In):
    """What a tenant may place (toll-fraud and abuse guards, operator token only)."""

    calls_per_minute: int | None = Field(
        default=None, ge=1, le=100_000, description="Calls POST /calls accepts per minute; "
        "null: no limit.", examples=[60],
    )  # fmt: skip
    allowed_countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = Field(
        default=None,
        max_length=300,
        description="ISO 3166 alpha-2 regions calls may be placed to; null: anywhere.",
        examples=[["US", "CA"]],
    )
    max_concurrent_calls: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description=(
            "Live calls (inbound and outbound) the tenant may have at once; the gateway "
            "refuses a call over it (busy inbound, concurrency_limit outbound). A change "
            "reaches the gateways within their account cache TTL. Null: no cap."
        ),
        examples=[10],
    )


def _days(kind: str) -> Any:
    return Field(default=None, ge=1, le=36_500, examples=[90],
                 description=f"Days {kind} are kept; null: for ever.")  # fmt: skip


class TenantRetentionBody(_In):
    """How long the tenant's data is kept; the edge's retention job erases what is older."""

    events_days: int | None = _days("a call's events (then tombstones; numbers cleared)")
    transcripts_days: int | None = _days(
        "events holding what was said or keyed (transcripts, replies, tools, DTMF, analyses)"
    )
    recordings_days: int | None = _days("recordings")
    contacts_days: int | None = _days("finished campaign contacts and their attempts")


class KeyCreate(_In):
    """A new API key."""

    name: str = Field(min_length=1, max_length=256, examples=["billing backend"])
    scopes: list[Scope] = Field(min_length=1, max_length=16, examples=[["calls:read"]])
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Null: the edge's default (VB_EDGE_API_RATE_LIMIT_PER_MINUTE).",
        examples=[600],
    )


class KeyOut(BaseModel):
    """An API key as listed: never its secret."""

    key_id: str
    tenant_id: str
    name: str
    scopes: list[str]
    rate_limit_per_minute: int
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    """A new key, with its token: shown this once, store it now."""

    token: str = Field(description="Authorization: Bearer <token>. Not retrievable later.")


_NAME = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
_VALUE = Annotated[str, Field(min_length=1, max_length=4096)]


class AccountPut(_In):
    """A tenant's credentials for one provider."""

    secrets: dict[_NAME, _VALUE] = Field(
        default_factory=dict,
        max_length=16,
        description="Credentials: stored encrypted, never shown.",
        examples=[{"auth_token": "..."}],
    )
    fields: dict[_NAME, _VALUE] = Field(
        default_factory=dict,
        max_length=32,
        description="Other settings (account id, caller id).",
        examples=[{"account_sid": "AC123"}],
    )


class AccountOut(BaseModel):
    """A provider account without its secrets."""

    provider: str
    secrets_set: list[str] = Field(description="Names of the stored secrets (never values).")
    fields: dict[str, str]
    updated_at: datetime


class CallCreate(_In):
    """An outbound call to place."""

    agent_id: str = Field(pattern=TOKEN_PATTERN, description="Agent that talks.", examples=["demo"])
    to_number: str = Field(
        pattern=E164, max_length=16, description="E.164.", examples=["+14155550199"]
    )
    from_number: str | None = Field(
        default=None, pattern=E164, max_length=16, examples=["+14155550100"]
    )
    provider: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Null: the tenant's default.",
        examples=["twilio"],
    )
    context: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1024)]] = (
        Field(default_factory=dict, max_length=64, examples=[{"customer_name": "Ada"}])
    )
    detect_machine: bool = False
    ring_timeout_s: int = Field(default=30, ge=5, le=120)


class CallAccepted(BaseModel):
    """The call was queued; follow it with ``GET /api/v1/calls/{call_id}`` and its events."""

    call_id: str
    status: Literal["queued"] = "queued"


class CallList(BaseModel):
    """A page of calls, newest first."""

    calls: list[CallSummary]
    next_before: str | None = Field(description="Pass as ``before`` for the next page.")


class EventList(BaseModel):
    """A page of a call's events, in order."""

    events: list[StoredEvent]
    next_after: str | None = Field(description="Pass as ``after`` for the next page.")


class BrowserSessionCreate(_In):
    """A browser call to start."""

    agent_id: str = Field(pattern=TOKEN_PATTERN, description="Agent that talks.", examples=["demo"])
    agent_version: int | None = Field(
        default=None,
        ge=1,
        description="Version the call runs, the live one or an older one (a replay). Null: live.",
        examples=[3],
    )
    context: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")],
        Annotated[str, Field(max_length=256)],
    ] = Field(
        default_factory=dict,
        max_length=MAX_CONTEXT_VARS,
        description="Call-context variables for the agent's prompt and greeting.",
        examples=[{"customer_name": "Ada"}],
    )


class ConsoleLogin(_In):
    """Log in to the console with an API key."""

    api_key: str = Field(
        min_length=1,
        max_length=256,
        description="A tenant's API key (vb_<key id>_<secret>), or the operator token.",
    )


class ConsoleSessionOut(BaseModel):
    """The console session: whose it is, and the CSRF token writes must send."""

    tenant_id: str | None = Field(description="The key's tenant; null for the operator.")
    key_id: str | None = Field(description="The key's id; null for the operator.")
    operator: bool = Field(
        default=False, description="Opened with the operator token: tenants and their keys."
    )
    scopes: list[str]
    expires_at: datetime
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every write.")
