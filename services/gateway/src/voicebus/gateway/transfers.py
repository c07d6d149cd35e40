"""Transfer URLs: the signed query of ``/telephony/<name>/transfer/{call_id}``. Pure.

A provider whose transfer API fetches markup from a URL (Plivo, Vobiz) gets
the gateway's transfer route for the call, with the call's identity, the
target number and the announcement (a warm transfer) signed in its query
exactly as the answer and status callback URLs are (``parameters.py``): any
gateway instance can answer it, and nobody can make it dial another number.
The URL goes only to the provider, so the target number and the announcement
may travel in it; neither is ever logged.

The same URL with ``vb_part=whisper`` is where the target's leg fetches the
announcement before it is bridged (Twilio ``<Number url>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from voicebus.gateway.dialing import CALLBACK_TTL_S
from voicebus.gateway.parameters import (
    AGENT_ID,
    CALL_ID,
    CONTEXT_PREFIX,
    DIRECTION,
    TENANT_ID,
    TO_NUMBER,
    TOKEN,
    TRANSFER,
    CallIdentity,
    InvalidStreamParametersError,
    from_parameters,
    to_parameters,
)

ANNOUNCEMENT: Final = "announcement"
"""Signed as ``ctx_announcement`` (the transfer URL carries no other call context)."""
PART: Final = "vb_part"
WHISPER: Final = "whisper"
_SIGNED: Final = frozenset({CALL_ID, TENANT_ID, AGENT_ID, TO_NUMBER, DIRECTION, TOKEN})


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """What a verified transfer URL asks for.

    Attributes:
        call: the call being transferred (no caller number, no context).
        to_number: the target. Personal data.
        announcement: said to the target before bridging (warm), if any. Personal data.
        whisper: the request is the target leg's fetch of the announcement.
    """

    call: CallIdentity
    to_number: str
    announcement: str | None
    whisper: bool


def transfer_url(
    base: str,
    call: CallIdentity,
    to_number: str,
    announcement: str | None,
    key: bytes,
    now: float,
) -> str:
    """The transfer route ``base`` with the call, target and announcement signed in its query."""
    signed = CallIdentity(
        call_id=call.call_id,
        tenant_id=call.tenant_id,
        agent_id=call.agent_id,
        to_number=to_number,
        context={ANNOUNCEMENT: announcement} if announcement else {},
        direction=call.direction,
    )
    return f"{base}?{urlencode(to_parameters(signed, key, now, purpose=TRANSFER))}"


def whisper_url(transfer_url_: str) -> str:
    """The URL where the target's leg fetches the announcement."""
    return f"{transfer_url_}&{urlencode({PART: WHISPER})}"


def transfer_order(query: Mapping[str, str], call_id: str, key: bytes, now: float) -> TransferOrder:
    """The transfer a URL's query orders, checked against its signature.

    Raises:
        InvalidStreamParametersError: unsigned, forged, expired, for another call or
            without a target.
    """
    signed = {k: v for k, v in query.items() if k in _SIGNED or k.startswith(CONTEXT_PREFIX)}
    call = from_parameters(signed, key, now, CALLBACK_TTL_S, purpose=TRANSFER)
    if call.call_id != call_id:
        raise InvalidStreamParametersError("transfer URL is for another call")
    if not call.to_number:
        raise InvalidStreamParametersError("transfer URL names no target")
    return TransferOrder(
        call=call,
        to_number=call.to_number,
        announcement=call.context.get(ANNOUNCEMENT) or None,
        whisper=query.get(PART) == WHISPER,
    )
