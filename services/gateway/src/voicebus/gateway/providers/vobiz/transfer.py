"""Vobiz transfer markup: ``<Dial><Number>`` served on the gateway's transfer route.

Vobiz's Transfer API is Plivo's (``POST /Call/{uuid}/`` with ``legs=aleg`` and
``aleg_url``): the call's current XML, and with it the media stream, ends and
the XML fetched from ``aleg_url`` runs, here a ``<Dial>`` to the target.

A warm transfer goes through cold, as for Plivo: ``<Dial confirmSound>`` plays
to the target before bridging only with ``confirmKey`` (the target would have
to press a key); the announcement is not said.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.responses import Response

from voicebus.gateway.providers.vobiz.webhook import XML_MEDIA_TYPE
from voicebus.gateway.settings import GatewaySettings


class VobizTransferMarkup:
    """Vobiz XML for transfers (see the module docstring)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings

    def dial(self, to_number: str, caller_id: str | None, whisper_url: str | None) -> Response:
        """``<Dial>`` the target (``whisper_url`` is not used: see the module docstring)."""
        root = ET.Element("Response")
        dial = ET.SubElement(root, "Dial")
        if caller_id:
            dial.set("callerId", caller_id.lstrip("+"))
        ET.SubElement(dial, "Number").text = to_number.lstrip("+")
        return _xml(root)

    def whisper(self, announcement: str) -> Response:
        """``<Speak>`` the announcement."""
        root = ET.Element("Response")
        ET.SubElement(root, "Speak").text = announcement
        return _xml(root)


def _xml(root: ET.Element) -> Response:
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return Response(
        content=f'<?xml version="1.0" encoding="UTF-8"?>{body}', media_type=XML_MEDIA_TYPE
    )
