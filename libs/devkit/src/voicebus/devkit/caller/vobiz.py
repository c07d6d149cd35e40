"""Vobiz's side of a call, as the simulated caller speaks it: answer webhook, XML, streams.

Following Vobiz's public documentation ("Validating callbacks", "Stream",
"Stream events"): Vobiz is Plivo-compatible on the wire, with three differences
that matter here:

- callbacks carry ``X-Vobiz-Signature-V3`` = base64(HMAC-SHA256(Auth Token,
  URL without its query + "." + nonce)) and ``X-Vobiz-Signature-V3-Nonce``;
  the form body is not signed;
- there is no ``stop`` event: when the caller hangs up the socket just closes;
- ``start.accountId`` is Vobiz's numeric account id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from voicebus.devkit.caller.plivo import PlivoCaller, PlivoProtocol, new_nonce, new_uuid
from voicebus.devkit.caller.protocol import StreamIds

SIGNATURE_HEADER: Final = "X-Vobiz-Signature-V3"
NONCE_HEADER: Final = "X-Vobiz-Signature-V3-Nonce"


def sign(auth_token: str, url: str, nonce: str) -> str:
    """``X-Vobiz-Signature-V3`` for a callback to ``url`` (its query is not signed)."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    message = f"{base}.{nonce}".encode()
    return base64.b64encode(
        hmac.new(auth_token.encode(), message, hashlib.sha256).digest()
    ).decode()


class VobizProtocol(PlivoProtocol):
    """Vobiz audio streams: Plivo's protocol without a ``stop`` event."""

    def stop(self) -> str | None:
        """None: Vobiz ends a stream by closing the socket."""
        return None


def new_ids() -> StreamIds:
    """Vobiz-shaped ids: a numeric account id, UUID call and stream ids."""
    return StreamIds(str(secrets.randbelow(10**9)), new_uuid(), new_uuid())


class VobizCaller(PlivoCaller):
    """One simulated inbound Vobiz call (see :class:`~.plivo.PlivoCaller` for the arguments)."""

    provider = "vobiz"

    def new_protocol(self) -> PlivoProtocol:
        """Vobiz's stream protocol, with fresh ids."""
        return VobizProtocol(ids=new_ids())

    def headers(self, signed_url: str, form: Mapping[str, str]) -> dict[str, str]:
        """``X-Vobiz-Signature-V3`` and its nonce (the form is not signed)."""
        nonce = new_nonce()
        return {SIGNATURE_HEADER: sign(self._auth_token, signed_url, nonce), NONCE_HEADER: nonce}
