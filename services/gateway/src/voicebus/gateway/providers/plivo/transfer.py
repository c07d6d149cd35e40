"""Plivo transfer markup: ``<Dial><Number>`` served on the gateway's transfer route.

Plivo's Transfer API (``POST /Call/{uuid}/`` with ``legs=aleg`` and
``aleg_url``) ends the call's current XML, and with it the media stream, and
runs the XML fetched from ``aleg_url``: here a ``<Dial>`` to the target.

A warm transfer goes through cold: Plivo's ``<Dial confirmSound>`` plays
markup to the target before bridging only together with ``confirmKey``, so
the target would have to press a key to take the call; the announcement is
not said.
"""

from __future__ import annotations

from plivo import plivoxml
from starlette.responses import Response

from voicebus.gateway.providers.plivo.webhook import XML_MEDIA_TYPE
from voicebus.gateway.settings import GatewaySettings


class PlivoTransferMarkup:
    """Plivo XML for transfers (see the module docstring)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    def dial(self, to_number: str, caller_id: str | None, whisper_url: str | None) -> Response:
        """``<Dial>`` the target (``whisper_url`` is not used: see the module docstring)."""
        response = plivoxml.ResponseElement()
        dial = plivoxml.DialElement(caller_id=caller_id.lstrip("+") if caller_id else None)
        dial.add(plivoxml.NumberElement(to_number.lstrip("+")))
        response.add(dial)
        return _xml(response)

    def whisper(self, announcement: str) -> Response:
        """``<Speak>`` the announcement."""
        response = plivoxml.ResponseElement()
        response.add(plivoxml.SpeakElement(announcement))
        return _xml(response)


def _xml(response: plivoxml.ResponseElement) -> Response:
    return Response(content=response.to_string(pretty=False), media_type=XML_MEDIA_TYPE)
