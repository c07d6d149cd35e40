"""Just enough of Twilio's side of a call for load generation: the signed inbound
webhook, the ``<Stream>`` it answers with, and the Media Streams messages.

Deliberately separate from the simulated caller (``voicebus.devkit.caller``):
the load generator sends preformatted text at thousands of messages per
second and needs none of the caller's playout or timeline.
"""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def new_sid(prefix: str) -> str:
    """``prefix`` followed by 32 hex digits, as Twilio's SIDs."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Stream:
    """The ``<Connect><Stream>`` of a webhook answer."""

    ws_url: str
    parameters: dict[str, str]


async def place_call(client: httpx.AsyncClient, gateway_url: str, auth_token: str,
                     agent: str, call_sid: str, account_sid: str) -> Stream:  # fmt: skip
    """Post a signed inbound-call webhook; the stream the gateway connects.

    Raises:
        ConnectionError: the gateway refused the call or answered without a stream.
    """
    url = f"{gateway_url.rstrip('/')}/telephony/twilio/inbound/{quote(agent, safe='')}"
    params = {"AccountSid": account_sid, "CallSid": call_sid, "CallStatus": "ringing",
              "Direction": "inbound", "From": "+15005550006", "To": "+15005550001",
              "ApiVersion": "2010-04-01"}  # fmt: skip
    signature = RequestValidator(auth_token).compute_signature(url, params)
    response = await client.post(url, data=params, headers={SIGNATURE_HEADER: signature})
    if response.status_code != httpx.codes.OK:
        raise ConnectionError(f"webhook answered HTTP {response.status_code}")
    # TwiML from the gateway under test; expat resolves no external entities.
    root = ET.fromstring(response.text)  # noqa: S314
    node = root.find("Connect/Stream")
    if node is None or not node.get("url"):
        raise ConnectionError("the webhook answer connects no stream")
    parameters = {p.get("name", ""): p.get("value", "") for p in node.findall("Parameter")}
    # The gateway under test runs on loopback: its media WebSocket URL is reached as is.
    return Stream(node.get("url", ""), parameters)


def connected() -> str:
    """The first message of a stream."""
    return '{"event":"connected","protocol":"Call","version":"1.0.0"}'


def start(stream_sid: str, account_sid: str, call_sid: str, parameters: dict[str, str]) -> str:
    """The ``start`` message with the stream's custom parameters."""
    return json.dumps(
        {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
         "start": {"accountSid": account_sid, "streamSid": stream_sid, "callSid": call_sid,
                   "tracks": ["inbound"], "customParameters": parameters,
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                   "channels": 1}}},
        separators=(",", ":"),
    )  # fmt: skip


def media(seq: int, chunk: int, stream_sid: str, payload_b64: str) -> str:
    """One ``media`` message (20 ms of μ-law, base64)."""
    return (
        f'{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound",'
        f'"chunk":"{chunk}","timestamp":"{(chunk - 1) * 20}","payload":"{payload_b64}"}},'
        f'"streamSid":"{stream_sid}"}}'
    )


def mark(seq: int, stream_sid: str, name: str) -> str:
    """The echo of a mark whose audio has played."""
    return json.dumps(
        {"event": "mark", "sequenceNumber": str(seq), "streamSid": stream_sid,
         "mark": {"name": name}},
        separators=(",", ":"),
    )  # fmt: skip
