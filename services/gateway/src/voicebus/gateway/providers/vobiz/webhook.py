"""Vobiz's answer webhook: ``X-Vobiz-Signature-V3`` (or ``-V2``) check and Vobiz XML answers.

Vobiz signs, with HMAC-SHA256 keyed by the Auth Token, the callback URL
without its query string joined to a random nonce (V3: ``url + "." + nonce``;
V2: ``url + nonce``), base64-encoded; the nonce comes in a companion header.
The form body is not signed, so the signature proves who called, not what
was posted. Behind a proxy the URL this process sees is not the one Vobiz
requested, so the configured public URL is used.

Vobiz XML is Plivo XML: ``<Response><Stream bidirectional="true"
keepCallAlive="true" contentType=...>wss://...</Stream></Response>``; the
signed stream parameters travel in the stream URL's query string (Vobiz's
``extraHeaders`` allow only ``[A-Za-z0-9]``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Final

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from voicebus.gateway.providers.base import InboundCall
from voicebus.gateway.providers.outbound import ProviderAccount
from voicebus.gateway.providers.plivo.webhook import form_params, optional, phone, stream_url
from voicebus.gateway.providers.vobiz.settings import VobizSettings
from voicebus.gateway.settings import GatewaySettings

SIGNATURE_V3: Final = "X-Vobiz-Signature-V3"
NONCE_V3: Final = "X-Vobiz-Signature-V3-Nonce"
SIGNATURE_V2: Final = "X-Vobiz-Signature-V2"
NONCE_V2: Final = "X-Vobiz-Signature-V2-Nonce"
XML_MEDIA_TYPE: Final = "application/xml"
MAX_NONCE_CHARS: Final = 64


def signature(auth_token: str, base_url: str, nonce: str, *, version: int = 3) -> str:
    """The base64 HMAC-SHA256 Vobiz sends for ``base_url`` (no query string) and ``nonce``."""
    message = f"{base_url}.{nonce}" if version == 3 else f"{base_url}{nonce}"
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _matches(token: str, url: str, nonce: str | None, sent: str | None, version: int) -> bool:
    if not nonce or not sent or len(nonce) > MAX_NONCE_CHARS:
        return False
    expected = signature(token, url, nonce, version=version)
    # A sub-account callback may carry several comma-separated signatures.
    return any(hmac.compare_digest(expected, part.strip()) for part in sent.split(","))


class VobizWebhook:
    """Checks and answers ``POST /telephony/vobiz/inbound/{agent}``.

    Args:
        settings: the gateway's settings (public URL, environment).
        vobiz: the Vobiz account; read from ``VB_GATEWAY_VOBIZ_*`` when omitted.
    """

    def __init__(self, settings: GatewaySettings, vobiz: VobizSettings | None = None) -> None:
        self._settings = settings
        self._vobiz = (vobiz or VobizSettings()).checked(settings.environment)

    def verify_headers(self, request: Request) -> bool:
        """Whether the request carries a valid V3 (or, failing that, V2) signature."""
        url = self._settings.public_http_url(request.url.path)
        token = self._vobiz.auth_token.get_secret_value()
        headers = request.headers
        if SIGNATURE_V3 in headers:
            return _matches(token, url, headers.get(NONCE_V3), headers.get(SIGNATURE_V3), 3)
        return _matches(token, url, headers.get(NONCE_V2), headers.get(SIGNATURE_V2), 2)

    async def accept(self, request: Request) -> InboundCall | None:
        """The call a webhook describes, or None when its signature does not match."""
        if not self.verify_headers(request):
            return None
        get = request.method == "GET"  # answer_method="GET": the parameters are the query
        params = dict(request.query_params) if get else await form_params(request)
        if params is None:
            return None
        v3 = SIGNATURE_V3 in request.headers
        return InboundCall(
            provider_call_id=optional(params.get("CallUUID"), 128),
            from_number=phone(params.get("From")),
            to_number=phone(params.get("To")),
            nonce=request.headers.get(NONCE_V3 if v3 else NONCE_V2),
            query_signed=False,  # Vobiz signs the URL without its query string
        )

    def connect(self, stream_url_: str, parameters: Mapping[str, str]) -> Response:
        """A bidirectional ``<Stream>`` that keeps the call up while the stream runs."""
        root = ET.Element("Response")
        stream = ET.SubElement(
            root,
            "Stream",
            bidirectional="true",
            keepCallAlive="true",
            audioTrack="inbound",
            contentType=self._vobiz.content_type,
        )
        stream.text = stream_url(stream_url_, parameters)
        return _xml(root)

    def decline(self, message: str) -> Response:
        """Vobiz XML that speaks ``message`` and hangs up."""
        root = ET.Element("Response")
        ET.SubElement(root, "Speak").text = message
        ET.SubElement(root, "Hangup")
        return _xml(root)

    def busy(self) -> Response:
        """``<Hangup reason="busy"/>`` (Plivo-compatible XML): the call is rejected unanswered."""
        root = ET.Element("Response")
        ET.SubElement(root, "Hangup", reason="busy")
        return _xml(root)


def _xml(root: ET.Element) -> Response:
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return Response(
        content=f'<?xml version="1.0" encoding="UTF-8"?>{body}', media_type=XML_MEDIA_TYPE
    )


def tenant_webhook(settings: GatewaySettings, account: ProviderAccount) -> VobizWebhook:
    """The inbound webhook of one tenant: signatures checked with its Auth Token."""
    vobiz = VobizSettings(
        auth_id=account.get("account_id") or "",
        auth_token=SecretStr(account.secret("auth_token")),
    )
    return VobizWebhook(settings, vobiz)
