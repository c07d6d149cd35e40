"""The event envelope: CloudEvents attribute names, frozen pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from voicebus.contracts import subjects
from voicebus.contracts.ids import new_id
from voicebus.contracts.text import CLEAN_JSON, NO_CONTROL_PATTERN, refuse_control


def _token(what: str) -> AfterValidator:
    return AfterValidator(lambda v: subjects.token(v, what))


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a time zone (UTC)")
    return value.astimezone(UTC)


TenantId = Annotated[
    str,
    _token("tenant id"),
    Field(description="The tenant that owns the call.", examples=["acme"]),
]
CallId = Annotated[
    str,
    _token("call id"),
    Field(
        description="voicebus call id, the same in every event and subject of one call.",
        examples=["0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77"],
    ),
]
UtcTime = Annotated[datetime, AfterValidator(_utc)]


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class Data(BaseModel):
    """Base of every event's ``data``: frozen; unknown fields are ignored so an
    older consumer still parses a newer producer's event (versions only grow).

    No string of it (mapping keys included) may hold a control character other
    than tab, line feed or carriage return: see :mod:`voicebus.contracts.text`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="after")
    def _no_control_characters(self, info: ValidationInfo) -> Self:
        if not (info.context and info.context.get(CLEAN_JSON)):
            refuse_control(self.__dict__)
        return self


class Envelope(BaseModel):
    """Fields every event carries, named as in CloudEvents 1.0.

    Subclasses add ``type: Literal["<name>.v1"]`` and ``data``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_name: ClassVar[str]
    """Unversioned type, e.g. ``call.started``; the subject's tail."""

    specversion: str = Field(
        default="1.0", description="CloudEvents spec version.", examples=["1.0"]
    )
    id: str = Field(
        default_factory=new_id,
        min_length=1,
        max_length=64,
        pattern=NO_CONTROL_PATTERN,
        description=(
            "Unique, time-sortable event id (UUIDv7). Published as Nats-Msg-Id, so a "
            "retried publish is stored once; consumers are idempotent on it."
        ),
        examples=["0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77"],
    )
    source: str = Field(
        min_length=1,
        max_length=256,
        pattern=NO_CONTROL_PATTERN,
        description="What produced the event: '<service>/<instance>'.",
        examples=["gateway/gw-7f9c"],
    )
    time: UtcTime = Field(
        default_factory=utc_now,
        description="When the fact happened, UTC (RFC 3339).",
        examples=["2026-11-21T10:15:30.123Z"],
    )
    tenant_id: TenantId
    call_id: CallId

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("type")
        if field is not None and isinstance(field.default, str):
            cls.event_name = subjects.strip_version(field.default)

    @property
    def subject(self) -> str:
        """``vb.evt.<tenant>.<call>.<type>``, where this event is published."""
        return subjects.evt(self.tenant_id, self.call_id, self.event_name)

    def to_bytes(self) -> bytes:
        """The JSON body as published on the bus."""
        return self.model_dump_json().encode()
