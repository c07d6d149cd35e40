"""What the gateway and the edge ask each other over ``vb.rpc.*``.

The edge owns tenants and their encrypted provider credentials; the gateway owns
the telephony providers and the key that signs stream parameters. So:

- the gateway asks the edge for a tenant's provider account
  (``vb.rpc.edge.accounts.get``) when it dials, transfers or checks a tenant's
  webhook signature, and caches the answer briefly;
- the edge asks the gateway to start a browser call
  (``vb.rpc.gateway.sessions.create``): only the gateway can sign the call's
  stream parameters.

Neither imports the other; :data:`TELEPHONY_PROVIDERS` is the one list both agree on.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, PlainSerializer, SecretStr

from voicebus.contracts import subjects
from voicebus.contracts.events._base import CallId, Data, TenantId
from voicebus.contracts.rpc import Reply

TELEPHONY_PROVIDERS: Final = frozenset({"twilio", "plivo", "exotel", "vobiz"})
"""The telephony providers the gateway has plug-ins for: the names a tenant may store an
account under at the edge and name in ``POST /api/v1/calls``. The gateway's registry must
hold exactly these (a gateway test checks it)."""

ACCOUNTS_GET: Final = subjects.rpc("edge", "accounts", "get")
"""A tenant's provider account, secrets included: request :class:`GetAccount`, reply
:class:`AccountReply`.

The reply carries decrypted credentials. Only the gateway's NATS user may publish on
this subject (and only the edge's subscribe to it); every other user must be denied it
in the NATS permissions, which come with the deployment's NATS accounts."""

SESSIONS_CREATE: Final = subjects.rpc("gateway", "sessions", "create")
"""Start a browser call: request :class:`CreateSession`, reply :class:`SessionReply`."""

MAX_CONTEXT_VARS: Final = 32
"""Call-context variables one browser session may carry."""

ProviderName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Telephony provider (one of the gateway's plug-ins).",
        examples=["twilio"],
    ),
]

SecretValue = Annotated[
    SecretStr,
    PlainSerializer(lambda value: value.get_secret_value(), return_type=str, when_used="json"),
    Field(
        description="SECRET: a credential in clear on the wire; never log or store it.",
        json_schema_extra={"format": "password", "writeOnly": True},
    ),
]
"""A credential: hidden in ``repr`` and logs, in clear only in the JSON on the wire."""


class GetAccount(Data):
    """Request body of ``vb.rpc.edge.accounts.get``."""

    tenant_id: TenantId
    provider: ProviderName


class StoredAccount(Data):
    """A tenant's account with one provider, as the edge stores it (decrypted).

    ``secrets`` are credentials: the gateway keeps them in memory only, briefly.
    """

    tenant_id: TenantId
    provider: ProviderName
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Non-secret settings: account id, caller id, REST base URL.",
        examples=[{"account_sid": "AC0123", "caller_id": "+14155550100"}],
    )
    secrets: dict[str, SecretValue] = Field(
        default_factory=dict,
        description=(
            "SECRET: credentials by name (auth token, API token), in clear. Only the "
            "gateway may read this subject's replies."
        ),
        examples=[{"auth_token": "<secret>"}],
    )
    allowed_countries: list[str] | None = Field(
        default=None,
        description=(
            "The tenant's destination allow-list (ISO 3166 alpha-2): the gateway dials no "
            "number outside it, whoever ordered the call (REST, campaigns). Null: anywhere."
        ),
        examples=[["US", "CA"]],
    )
    max_concurrent_calls: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The tenant's cap on live calls (inbound and outbound together): the gateway "
            "refuses a call over it (busy to an inbound caller, concurrency_limit to an "
            "outbound order). Null: no cap."
        ),
        examples=[10],
    )


class AccountReply(Reply):
    """Reply of ``vb.rpc.edge.accounts.get``: 404 ``account_not_found`` when none is stored."""

    account: StoredAccount | None = Field(default=None, description="The account, when ok.")


class CreateSession(Data):
    """Request body of ``vb.rpc.gateway.sessions.create``: a browser call to start."""

    tenant_id: TenantId
    agent_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,128}$", description="Agent to talk to.", examples=["demo"]
    )
    agent_version: int | None = Field(
        default=None, ge=1, description="Version to run (null: the live one).", examples=[3]
    )
    max_concurrent_calls: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The tenant's concurrent-call cap as the edge keeps it: the gateway starts the "
            "call only if it takes one of the tenant's slots (429 concurrent_call_limit "
            "otherwise). Null: no cap."
        ),
        examples=[10],
    )
    context: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_CONTEXT_VARS,
        description="Call-context variables for the agent's prompt and greeting.",
        examples=[{"customer_name": "Ada"}],
    )


class BrowserSession(Data):
    """What a page needs to open one browser call's media WebSocket on the gateway.

    ``parameters`` are the call's signed stream parameters: short-lived, for this call
    only, never a credential.
    """

    call_id: CallId
    ws_url: str = Field(
        max_length=2048,
        description="The gateway's media WebSocket for browser calls.",
        examples=["wss://voice.example.com/ws/browser"],
    )
    parameters: dict[str, str] = Field(
        description="Signed stream parameters: send them unchanged in the start message.",
        examples=[{"call_id": "0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77", "vb_token": "..."}],
    )
    expires_in_s: int = Field(
        ge=1, description="Seconds the parameters stay usable.", examples=[300]
    )


class SessionReply(Reply):
    """Reply of ``vb.rpc.gateway.sessions.create``: 404 ``agent_not_found`` for an unknown
    agent, 409 ``browser_calls_disabled`` when the gateway takes no browser calls, 429
    ``concurrent_call_limit`` when the tenant's calls fill its cap, 503 when the agent
    cannot be looked up."""

    session: BrowserSession | None = Field(default=None, description="The session, when ok.")
