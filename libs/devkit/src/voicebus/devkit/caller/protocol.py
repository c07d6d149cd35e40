"""What the simulated caller needs from one provider's media stream protocol.

A :class:`CallerProtocol` builds the messages a provider sends on the media
socket and reads the ones the gateway sends back; the caller session runs the
clock, the playout buffer and the turns for any of them. Audio crosses this
interface as PCM16LE 8 kHz mono: a protocol encodes and decodes its wire
format (μ-law, L16, other rates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from voicebus.devkit.caller.errors import CallerError, CallRejectedError


class ProtocolError(ValueError):
    """A message from the server does not follow the provider's stream protocol."""


@dataclass(frozen=True)
class StreamIds:
    """The provider's ids of one simulated call."""

    account_sid: str
    call_sid: str
    stream_sid: str


@dataclass(frozen=True)
class ServerMedia:
    """Agent audio to queue for playback (PCM16LE 8 kHz)."""

    pcm: bytes


@dataclass(frozen=True)
class ServerMark:
    """A named point in the audio sent so far: echo it once that audio has played."""

    name: str


@dataclass(frozen=True)
class ServerClear:
    """Drop the unplayed audio."""


ServerMessage = ServerMedia | ServerMark | ServerClear
"""What a server message asks the caller to do."""


class CallerProtocol(Protocol):
    """One simulated call's stream protocol."""

    frames_per_chunk: int
    ids: StreamIds

    def opening(self, parameters: Mapping[str, str]) -> list[str]:
        """The messages the provider sends as soon as the socket is open."""
        ...

    def media(self, pcm: bytes, chunk: int, timestamp_ms: int) -> str:
        """One chunk of caller audio (``chunk`` counts from 1)."""
        ...

    def dtmf(self, digit: str) -> str:
        """The caller pressed a key."""
        ...

    def mark(self, name: str) -> str:
        """The echo of a mark whose audio has played."""
        ...

    def stop(self) -> str | None:
        """The message announcing the caller hung up, or None where the socket just closes."""
        ...

    def parse(self, raw: str | bytes) -> ServerMessage:
        """Read one server message.

        Raises:
            ProtocolError: not a message of this protocol, or for another stream.
        """
        ...


@dataclass(frozen=True)
class StreamTarget:
    """The media stream a webhook answer names (Plivo-style XML: parameters in the URL).

    Attributes:
        url: the WebSocket URL as the markup names it (public address, query included).
        parameters: the platform's stream parameters (``call_id``, ...).
        content_type: the audio format the markup asked for.
    """

    url: str
    parameters: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    extra_headers: str | None = None
    """Plivo's ``extraHeaders``: sent back in the stream's ``start`` as ``extra_headers``."""


async def post_form(
    url: str, form: Mapping[str, str], headers: Mapping[str, str], timeout: float
) -> str:
    """POST a webhook form; the answer's body when it is HTTP 200.

    Raises:
        CallRejectedError: any other status.
        CallerError: the gateway could not be reached.
    """
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(url, data=dict(form), headers=dict(headers))
    except httpx.HTTPError as err:
        raise CallerError(f"cannot reach the gateway at {url}: {err}") from err
    if response.status_code != httpx.codes.OK:
        raise CallRejectedError(
            f"the gateway answered the webhook with HTTP {response.status_code}",
            status=response.status_code,
            body=response.text,
        )
    return response.text
