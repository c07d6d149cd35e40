"""Tools: the entries of an agent's ``tools:`` list, and a tenant's webhook tools.

An agent lists built-in tools (``end_call``, ``do_not_call``, ``data``,
``transfer_call``, ``send_dtmf``) and refers to its tenant's webhook tools by
name (``{type: webhook, name: lookup_account}``). Webhook tools are a tenant's
own resource (``vb.rpc.orchestrator.tools.*``): their secrets (header values,
the signing secret) are accepted on create and update, stored encrypted and
never returned.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from voicebus.contracts.commands import TransferMode

ToolName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$",
        description="Name the LLM calls the tool by.",
        examples=["lookup_account"],
    ),
]
E164 = Annotated[
    str,
    Field(
        pattern=r"^\+[1-9][0-9]{1,14}$",
        description="Phone number, E.164. Personal data.",
        examples=["+14155550123"],
    ),
]
Secret = Annotated[
    SecretStr,
    # Secrets travel in requests (edge → orchestrator) as plain JSON strings, and are
    # masked in every repr and log line.
    PlainSerializer(lambda value: value.get_secret_value(), return_type=str, when_used="json"),
]
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_HEADER: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


class Definition(BaseModel):
    """Base of what people write (agents, tools): frozen; an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EndCallTool(Definition):
    """``type: end_call``: the agent says its goodbye and hangs up."""

    type: Literal["end_call"] = Field(description="Tool type.")
    name: ToolName = "end_call"
    description: str = Field(
        default="End the phone call. Call it when the caller says goodbye or has nothing else.",
        max_length=1024,
        description="What the LLM is told the tool does.",
    )


class DoNotCallTool(Definition):
    """``type: do_not_call``: the callee asked not to be called again (``dnc.requested``)."""

    type: Literal["do_not_call"] = Field(description="Tool type.")
    name: ToolName = "do_not_call"
    description: str = Field(
        default=(
            "Put the person's number on the do-not-call list. Call it when they ask not to "
            "be called again (for example 'stop calling me')."
        ),
        max_length=1024,
        description="What the LLM is told the tool does.",
    )
    end_call: bool = Field(default=True, description="Hang up after the agent's goodbye.")


class DataTool(Definition):
    """``type: data``: look a record up by key in a JSON file of the operator's agents folder.

    Only agents imported by the operator (templates) may read files; a tenant's own agent
    cannot name a file on the orchestrator's disk.
    """

    type: Literal["data"] = Field(description="Tool type.")
    name: ToolName
    description: str = Field(min_length=1, max_length=1024, description="For the LLM.")
    file: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_./-]*$",
        description="JSON object file, relative to the agents folder (no '..').",
        examples=["data/orders.json"],
    )
    key: str = Field(default="id", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    key_description: str = Field(default="The record's key.", max_length=512)
    key_format: Literal["text", "digits"] = Field(
        default="text", description="digits: keep only the key's digits ('12 34' → '1234')."
    )
    reply: str | None = Field(
        default=None, description="Spoken answer when found: {{key}} and the record's fields."
    )
    reply_not_found: str | None = Field(
        default=None, description="Spoken answer when not found: {{key}} only."
    )

    @field_validator("file")
    @classmethod
    def _inside(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError("must stay inside the agents folder (no '..')")
        return value


class TransferDestination(Definition):
    """A number the agent may transfer to; the LLM picks one by name, never a raw number."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="What the LLM names.", examples=["sales"]
    )
    number: E164
    description: str = Field(default="", max_length=512, description="When to choose it.")


class TransferCallTool(Definition):
    """``type: transfer_call``: hand the caller to a person at one of the listed numbers.

    Warm (where the provider can): the target first hears a summary of the call.
    """

    type: Literal["transfer_call"] = Field(description="Tool type.")
    name: ToolName = "transfer_call"
    description: str = Field(
        default="Transfer the caller to a person. Call it when they ask for a human.",
        max_length=1024,
        description="For the LLM.",
    )
    destinations: list[TransferDestination] = Field(
        min_length=1, max_length=32, description="Numbers the agent may transfer to."
    )
    mode: TransferMode = Field(default=TransferMode.COLD, description="Cold or warm.")
    announcement: str | None = Field(
        default=None,
        max_length=2048,
        description="Warm: what the target hears ({{variables}}); default: the LLM's summary.",
    )
    say: str = Field(
        default="Please hold while I transfer you.",
        max_length=512,
        description="Said to the caller before the transfer.",
    )

    @field_validator("destinations")
    @classmethod
    def _unique(cls, value: list[TransferDestination]) -> list[TransferDestination]:
        names = [d.name for d in value]
        if len(set(names)) != len(names):
            raise ValueError("destination names must be unique")
        return value


class SendDtmfTool(Definition):
    """``type: send_dtmf``: press keypad keys in the call (navigate another party's IVR)."""

    type: Literal["send_dtmf"] = Field(description="Tool type.")
    name: ToolName = "send_dtmf"
    description: str = Field(
        default="Press keypad keys in the call, e.g. to choose an option of a phone menu.",
        max_length=1024,
        description="For the LLM.",
    )


class WebhookRef(Definition):
    """``type: webhook``: the tenant's webhook tool of this name (``/api/v1/tools``)."""

    type: Literal["webhook"] = Field(description="Tool type.")
    name: ToolName


AgentTool = Annotated[
    EndCallTool | DoNotCallTool | DataTool | TransferCallTool | SendDtmfTool | WebhookRef,
    Field(discriminator="type"),
]
"""Any entry of an agent's ``tools:`` list."""
AGENT_TOOL_TYPES: Final = (
    "end_call",
    "do_not_call",
    "data",
    "transfer_call",
    "send_dtmf",
    "webhook",
)


class HttpMethod(StrEnum):
    """Methods a webhook tool may use."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


def check_parameters_schema(value: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameters must be a JSON Schema object: ``type: object`` with ``properties``.

    Raises:
        ValueError: naming what is wrong.
    """
    if value.get("type") != "object":
        raise ValueError("must be a JSON Schema with type: object")
    properties = value.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError("properties must be an object of JSON Schemas")
    for name, schema in properties.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            raise ValueError(f"property name {name!r} must be an identifier")
        if not isinstance(schema, dict):
            raise ValueError(f"property {name!r} must be a JSON Schema object")
    required = value.get("required", [])
    if not isinstance(required, list) or any(r not in properties for r in required):
        raise ValueError("required must list names of properties")
    return value


class WebhookSettings(Definition):
    """What a webhook tool is, without its secrets (returned by every read)."""

    name: ToolName
    description: str = Field(min_length=1, max_length=1024, description="For the LLM.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (type: object) of the arguments the LLM passes.",
        examples=[{"type": "object", "properties": {"pin": {"type": "string"}}}],
    )
    method: HttpMethod = Field(default=HttpMethod.POST, description="HTTP method.")
    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description=(
            "URL template; {{argument}} is replaced with the URL-encoded argument. Targets on "
            "loopback, private and link-local addresses are refused unless the operator allows."
        ),
        examples=["https://api.acme.example/accounts/{{pin}}"],
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent as written (no secrets here)."
    )
    timeout_s: float = Field(default=5.0, ge=0.1, le=30.0, description="Longest one attempt.")
    retries: int = Field(
        default=0, ge=0, le=3, description="Retries after a failure (idempotent methods only)."
    )
    max_response_bytes: int = Field(
        default=65536, ge=256, le=1024 * 1024, description="Larger answers are refused."
    )
    reply: str | None = Field(
        default=None,
        max_length=1024,
        description=(
            "Spoken answer from the result's fields ({{field}}), instead of another LLM "
            "round; used when the result is an object without found: false."
        ),
        examples=["Order {{order_id}} {{summary}}."],
    )

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_parameters_schema(value)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _HEADER.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return value

    @model_validator(mode="after")
    def _retries_only_when_idempotent(self) -> WebhookSettings:
        if self.retries and self.method.value not in IDEMPOTENT_METHODS:
            raise ValueError(
                f"retries: a {self.method.value} may not be retried (only GET, HEAD, PUT, DELETE)"
            )
        return self


class WebhookTool(WebhookSettings):
    """A tenant's webhook tool as written: its settings and its secrets.

    Every request carries ``X-Voicebus-Signature: t=<unix seconds>,v1=<hex>``, the
    HMAC-SHA256 with ``signing_secret`` of ``"<t>." + body`` (the body is empty for GET).
    """

    secret_headers: dict[str, Secret] = Field(
        default_factory=dict,
        description="Headers whose values are secrets (e.g. Authorization): never returned.",
    )
    signing_secret: Secret | None = Field(
        default=None,
        description="HMAC-SHA256 key of X-Voicebus-Signature; generated when not given.",
    )

    @field_validator("secret_headers")
    @classmethod
    def _secret_header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not _HEADER.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return value

    @model_validator(mode="after")
    def _no_header_twice(self) -> WebhookTool:
        both = sorted({h.lower() for h in self.headers} & {h.lower() for h in self.secret_headers})
        if both:
            raise ValueError(f"headers and secret_headers both set {', '.join(both)}")
        return self

    def settings(self) -> WebhookSettings:
        """The tool without its secrets."""
        data = self.model_dump(exclude={"secret_headers", "signing_secret"})
        return WebhookSettings.model_validate(data)
