"""The call's identity, carried from the webhook answer to the media stream's start.

The webhook answer hands the provider custom parameters (Twilio
``<Parameter>``) that come back in the stream's start message: ``call_id``,
``tenant_id``, ``agent_id``, ``from_number``/``to_number`` when known, one
``ctx_<name>`` per call-context variable, ``direction`` for outbound calls, and
``vb_token``. The token is an HMAC-SHA256 over every other parameter, its issue
time and its **purpose**, so only a stream that this gateway's webhook set up,
recently, can start a call: the media WebSocket itself is open to anyone who can
reach it. The purpose binds a token to one use: a media stream of one provider
(:func:`stream_purpose`), an outbound call's callbacks, or a transfer URL; the
same parameters signed for one are refused by the others. Single use (one media
session per call) needs state, so it is the media server's part, not this
module's. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from voicebus.contracts.errors import InvalidTokenError
from voicebus.contracts.events import Direction
from voicebus.contracts.subjects import token
from voicebus.contracts.text import strip_control

CALL_ID: Final = "call_id"
TENANT_ID: Final = "tenant_id"
AGENT_ID: Final = "agent_id"
AGENT_VERSION: Final = "agent_version"
FROM_NUMBER: Final = "from_number"
TO_NUMBER: Final = "to_number"
DIRECTION: Final = "direction"
TOKEN: Final = "vb_token"  # noqa: S105 - a parameter name, not a secret
CONTEXT_PREFIX: Final = "ctx_"

MAX_CONTEXT_VARS: Final = 32
MAX_VALUE_CHARS: Final = 256
_CONTEXT_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_VERSION: Final = re.compile(r"^[1-9][0-9]{0,8}$")
_TOKEN_SHAPE: Final = re.compile(r"^([0-9]{1,12})\.([0-9a-f]{64})$")
CALLBACK: Final = "callback"
"""Purpose of an outbound call's answer, status and AMD callback URLs."""
TRANSFER: Final = "transfer"
"""Purpose of a transfer route's URL."""


def stream_purpose(provider: str) -> str:
    """Purpose of the parameters that start ``provider``'s media stream (``stream:<name>``)."""
    return f"stream:{provider}"


class InvalidStreamParametersError(ValueError):
    """The stream's parameters are missing, malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class CallIdentity:
    """Who a call is for, fixed by the webhook answer.

    Attributes:
        call_id: voicebus call id.
        tenant_id: owning tenant.
        agent_id: agent answering the call.
        agent_version: the version it runs, when pinned (a replay); None: the live one.
        from_number: caller number, if known. Personal data.
        to_number: called number, if known. Personal data.
        context: call-context variables for the agent's prompt and greeting.
        direction: inbound, or outbound for a call placed by an originate command.
    """

    call_id: str
    tenant_id: str
    agent_id: str
    from_number: str | None = None
    to_number: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    direction: Direction = Direction.INBOUND
    agent_version: int | None = None


def context_from_query(query: Mapping[str, str]) -> dict[str, str]:
    """Call context from a webhook URL's ``ctx_<name>=<value>`` query parameters.

    Other query parameters, names that are not identifiers and values longer
    than :data:`MAX_VALUE_CHARS` characters are left out; at most
    :data:`MAX_CONTEXT_VARS` variables are kept. Control characters are stripped
    from values (the contracts refuse them).
    """
    context: dict[str, str] = {}
    for key, value in query.items():
        name = key.removeprefix(CONTEXT_PREFIX)
        if key == name or not _CONTEXT_NAME.fullmatch(name) or len(value) > MAX_VALUE_CHARS:
            continue
        context[name] = strip_control(value)
        if len(context) == MAX_CONTEXT_VARS:
            break
    return context


def _digest(params: Mapping[str, str], issued_at: int, key: bytes, purpose: str) -> str:
    body = json.dumps([purpose, issued_at, sorted(params.items())], separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def to_parameters(
    identity: CallIdentity, key: bytes, now: float, *, purpose: str
) -> dict[str, str]:
    """The parameters for ``identity``, signed for ``purpose`` at ``now`` (Unix seconds)."""
    params = {CALL_ID: identity.call_id, TENANT_ID: identity.tenant_id, AGENT_ID: identity.agent_id}
    if identity.from_number:
        params[FROM_NUMBER] = identity.from_number
    if identity.to_number:
        params[TO_NUMBER] = identity.to_number
    for name, value in identity.context.items():
        params[f"{CONTEXT_PREFIX}{name}"] = value
    if identity.direction is not Direction.INBOUND:  # inbound streams keep their old shape
        params[DIRECTION] = identity.direction.value
    if identity.agent_version is not None:
        params[AGENT_VERSION] = str(identity.agent_version)
    issued_at = int(now)
    params[TOKEN] = f"{issued_at}.{_digest(params, issued_at, key, purpose)}"
    return params


def _checked_token(value: str | None, what: str) -> str:
    try:
        return token(value or "", what)
    except InvalidTokenError:
        raise InvalidStreamParametersError(
            f"stream parameter {what} is missing or invalid"
        ) from None


def from_parameters(
    params: Mapping[str, str], key: bytes, now: float, ttl_s: float, *, purpose: str
) -> CallIdentity:
    """Verify parameters signed for ``purpose`` and return the call identity they carry.

    Raises:
        InvalidStreamParametersError: no or a bad token (forged, or signed for another
            purpose or provider), a token issued more than ``ttl_s`` ago (or in the
            future), or a missing or invalid id.
    """
    match = _TOKEN_SHAPE.fullmatch(params.get(TOKEN, ""))
    if match is None:
        raise InvalidStreamParametersError("stream token is missing or malformed")
    issued_at = int(match.group(1))
    signed = {name: value for name, value in params.items() if name != TOKEN}
    if not hmac.compare_digest(match.group(2), _digest(signed, issued_at, key, purpose)):
        raise InvalidStreamParametersError("stream token does not match the parameters")
    if not (issued_at - 60 <= now <= issued_at + ttl_s):  # 60 s of clock skew between gateways
        raise InvalidStreamParametersError("stream token expired")
    context = {
        name.removeprefix(CONTEXT_PREFIX): value
        for name, value in signed.items()
        if name.startswith(CONTEXT_PREFIX)
    }
    return CallIdentity(
        call_id=_checked_token(signed.get(CALL_ID), "call id"),
        tenant_id=_checked_token(signed.get(TENANT_ID), "tenant id"),
        agent_id=_checked_token(signed.get(AGENT_ID), "agent id"),
        from_number=signed.get(FROM_NUMBER) or None,
        to_number=signed.get(TO_NUMBER) or None,
        context=context,
        direction=Direction.OUTBOUND
        if signed.get(DIRECTION) == Direction.OUTBOUND.value
        else Direction.INBOUND,
        agent_version=_version(signed.get(AGENT_VERSION)),
    )


def _version(value: str | None) -> int | None:
    """The pinned ``agent_version`` parameter, if any."""
    if value is None:
        return None
    if _VERSION.fullmatch(value) is None:
        raise InvalidStreamParametersError("stream parameter agent version is invalid")
    return int(value)
