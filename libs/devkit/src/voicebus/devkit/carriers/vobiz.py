"""A stand-in for Vobiz's Call API and its callees (see :mod:`.base` and :mod:`.plivo`).

Vobiz's API is Plivo's under ``/api/v1/Account/{auth_id}/Call/`` with two
differences that matter here: requests authenticate with the ``X-Auth-ID`` and
``X-Auth-Token`` headers, and callbacks are signed with
``X-Vobiz-Signature-V3`` over the URL (without its query) and a nonce. The
callee speaks Vobiz's stream protocol (no ``stop`` event).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import ClassVar

from starlette.requests import Request

from voicebus.devkit.caller import plivo as plivo_wire
from voicebus.devkit.caller import vobiz as wire
from voicebus.devkit.caller.protocol import CallerProtocol, StreamIds
from voicebus.devkit.carriers.base import DialedCall
from voicebus.devkit.carriers.plivo import PlivoCarrier


class VobizCarrier(PlivoCarrier):
    """Vobiz's Call API and callees on loopback (arguments as :class:`~.plivo.PlivoCarrier`)."""

    name: ClassVar[str] = "vobiz"
    api_prefix: ClassVar[str] = "/api/v1/Account"

    def authorized(self, request: Request) -> bool:
        """``X-Auth-ID`` and ``X-Auth-Token`` headers, on the account's path."""
        auth_id = request.headers.get("x-auth-id", "")
        token = request.headers.get("x-auth-token", "")
        return request.path_params.get(
            "auth_id"
        ) == self.auth_id == auth_id and hmac.compare_digest(
            token.encode(), self.auth_token.encode()
        )

    def sign(self, url: str, form: Mapping[str, str]) -> dict[str, str]:
        """Vobiz's V3 signature headers (the form is not signed)."""
        nonce = plivo_wire.new_nonce()
        return {
            wire.SIGNATURE_HEADER: wire.sign(self.auth_token, url, nonce),
            wire.NONCE_HEADER: nonce,
        }

    def protocol(self, call: DialedCall) -> CallerProtocol:
        """Vobiz audio streams in the format the answer asked for."""
        ids = StreamIds(self.auth_id, call.sid, plivo_wire.new_uuid())
        return wire.VobizProtocol(self._formats.get(call.sid), ids)
