"""What a telephony provider plug-in implements, and the values it hands to shared code.

A provider folder (``providers/<name>/``) supplies:

- an :class:`InboundWebhook`: checks the provider's signature on the inbound
  webhook and renders its markup (connect the call to our media stream, or say
  sorry and hang up);
- a :class:`StreamCodec` per media WebSocket: turns the provider's messages into
  the normalized :data:`StreamEvent` values below and builds its outbound
  media / mark / clear messages;
- optionally, outbound calling (see :mod:`.outbound`): a :class:`~.outbound.Dialer`
  built from a tenant's :class:`~.outbound.ProviderAccount`, and an
  :class:`~.outbound.OutboundWebhook` that verifies and reads the provider's
  answer and status callbacks.

Everything else (agent lookup, events, the bus, playback marks, hang-up) is
shared and never asks which provider carries the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response

from voicebus.gateway.metrics import IgnoreReason

if TYPE_CHECKING:
    from voicebus.gateway.providers.outbound import (
        Dialer,
        OutboundWebhook,
        ProviderAccount,
        TransferMarkup,
    )
    from voicebus.gateway.settings import GatewaySettings


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A verified inbound webhook: what the provider told us about the call.

    Attributes:
        provider_call_id: the provider's id for the call (Twilio CallSid).
        from_number: caller number, as the provider sent it. Personal data.
        to_number: called number. Personal data.
        nonce: the signature's one-time nonce, where the provider sends one (Plivo V3,
            Vobiz): a second request with it is a replay.
        query_signed: whether the signature covers the URL's query string; when not
            (Vobiz), ``ctx_*`` query values could be anyone's and are not used.
    """

    provider_call_id: str | None
    from_number: str | None = None
    to_number: str | None = None
    nonce: str | None = None
    query_signed: bool = True


class InboundWebhook(Protocol):
    """A provider's inbound webhook: signature check and answer markup."""

    async def accept(self, request: Request) -> InboundCall | None:
        """The call described by a webhook request, or None if its signature is not valid."""
        ...

    def connect(self, stream_url: str, parameters: Mapping[str, str]) -> Response:
        """Markup that connects the call to the media WebSocket at ``stream_url``.

        ``parameters`` must reach the WebSocket's start message unchanged.
        """
        ...

    def decline(self, message: str) -> Response:
        """Markup that says ``message`` to the caller and hangs up."""
        ...

    def busy(self) -> Response:
        """The provider's busy refusal: the call is not answered (the caller hears busy)."""
        ...


# -- normalized media stream events ------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The provider started the media stream.

    Attributes:
        stream_id: the provider's stream id (Twilio streamSid).
        provider_call_id: the provider's call id (Twilio callSid).
        parameters: the custom parameters our webhook answer set.
    """

    stream_id: str
    provider_call_id: str | None
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaIn:
    """One chunk of caller audio, already decoded to PCM16LE at the codec's rate.

    Attributes:
        pcm: PCM16LE mono samples.
        seq: the provider's chunk number, if it sent one.
        ts_ms: the provider's media timestamp (ms since the stream started), if any.
    """

    pcm: bytes
    seq: int | None
    ts_ms: int | None


@dataclass(frozen=True, slots=True)
class DtmfIn:
    """The caller pressed a key."""

    digits: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """The provider echoed a mark we sent: the audio before it was played (or cleared)."""

    name: str


@dataclass(frozen=True, slots=True)
class StreamStop:
    """The provider ended the stream (the caller hung up or the call ended)."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A valid message that needs no action (Twilio ``connected``)."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message that was malformed, unknown or out of place; counted, never fatal."""

    reason: IgnoreReason


SampleRate = Literal[8000, 16000]
"""Rates a provider's audio reaches the bus at."""

StreamEvent = StreamStart | MediaIn | DtmfIn | MarkPlayed | StreamStop | StreamInfo | Ignored
"""What a codec makes of one provider message."""


Payload = bytes | memoryview
"""One WebSocket message's payload; a memoryview is valid only during the call it is given to."""


class StreamCodec(Protocol):
    """One media WebSocket's protocol: provider messages in, provider messages out.

    One instance per connection; it may keep per-stream state (the stream id
    that outbound messages must carry). Messages are parsed straight from the
    socket's buffer into the provider's typed frame (msgspec), and outbound ones
    are bytes templates: this runs ~100 times a second per call.
    """

    sample_rate: SampleRate
    """Rate of the PCM16 audio it yields and accepts (the call's rate on the bus)."""

    binary_media: bool
    """Whether :meth:`media` builds a binary WebSocket message (raw audio) or a text one."""

    def parse(self, data: Payload) -> StreamEvent:
        """Turn one text message (UTF-8 bytes) from the provider into an event. Never raises."""
        ...

    def bind(self, start: StreamStart) -> None:
        """Remember the started stream; called once, before any outbound message."""
        ...

    def media(self, pcm: bytes) -> bytes:
        """The message that plays ``pcm`` (PCM16LE at :attr:`sample_rate`) to the caller.

        UTF-8 JSON for the providers' protocols; raw audio where the far end takes
        it (the browser, :attr:`binary_media`).
        """
        ...

    def mark(self, name: str) -> bytes:
        """A mark (text message) the provider echoes once the audio before it has played."""
        ...

    def clear(self) -> bytes:
        """The message (text) that drops audio sent but not yet played."""
        ...


@runtime_checkable
class BinaryStreamCodec(StreamCodec, Protocol):
    """A stream codec whose far end also sends binary messages (raw audio)."""

    def parse_bytes(self, data: Payload) -> StreamEvent:
        """Turn one binary message into a normalized event. Never raises."""
        ...


@runtime_checkable
class CallEventRelay(Protocol):
    """A codec whose far end shows the call's events (the browser page's transcript).

    The media session subscribes to the call's events while the call runs and
    sends the far end whatever :meth:`relay` makes of each one.
    """

    def relay(self, event: bytes) -> bytes | None:
        """The text message that shows one call event (envelope JSON), or None to skip it."""
        ...


@dataclass(frozen=True, slots=True)
class Provider:
    """A telephony provider plug-in, as registered in :mod:`.registry`.

    Attributes:
        name: path segment and event label: ``/telephony/<name>/...``, ``/ws/<name>``.
        webhook: builds the provider's inbound webhook from the settings; its
            ``connect`` also renders the answer markup of outbound calls.
        codec: makes a fresh stream codec for one media WebSocket.
        dialer: builds a dialer (REST client) for one account; None: cannot dial.
        callbacks: builds the verifier/reader of answer and status callbacks.
        default_account: the account of the default tenant from the environment
            (``VB_GATEWAY_<NAME>_...`` settings declared in the provider's folder).
        stream_auth: checks the media WebSocket's handshake headers (e.g. Basic
            auth) and its query parameters before it is accepted; None: the signed
            start parameters suffice.
        out_chunk_bytes: agent audio is sent in messages of at least this many
            bytes of PCM16 (whole frames); 0 sends every 20 ms frame at once.
        tenant_webhook: the inbound webhook of one tenant, checked with its account;
            enables ``/telephony/<name>/{tenant_id}/inbound/{agent_id}``.
        transfer_markup: builds the markup served on the transfer route, for
            providers whose transfer API fetches it from a URL (with ``callbacks``,
            which verify the provider's requests there); None: no such route.
    """

    name: str
    webhook: Callable[[GatewaySettings], InboundWebhook]
    codec: Callable[[], StreamCodec]
    dialer: Callable[[ProviderAccount], Dialer] | None = None
    callbacks: Callable[[GatewaySettings], OutboundWebhook] | None = None
    default_account: Callable[[GatewaySettings, str], ProviderAccount] | None = None
    stream_auth: Callable[[GatewaySettings, Mapping[str, str], Mapping[str, str]], bool] | None = (
        None
    )
    out_chunk_bytes: int = 0
    tenant_webhook: Callable[[GatewaySettings, ProviderAccount], InboundWebhook] | None = None
    transfer_markup: Callable[[GatewaySettings], TransferMarkup] | None = None

    @property
    def inbound_path(self) -> str:
        """Route of the inbound webhook (with an ``{agent_id}`` path parameter)."""
        return f"/telephony/{self.name}/inbound/{{agent_id}}"

    @property
    def tenant_inbound_path(self) -> str:
        """Route of a named tenant's inbound webhook (``{tenant_id}``, ``{agent_id}``)."""
        return f"/telephony/{self.name}/{{tenant_id}}/inbound/{{agent_id}}"

    @property
    def stream_path(self) -> str:
        """Route of the media WebSocket."""
        return f"/ws/{self.name}"

    @property
    def answer_path(self) -> str:
        """Route the provider fetches when an outbound call is answered (``{call_id}``)."""
        return f"/telephony/{self.name}/answer/{{call_id}}"

    @property
    def status_path(self) -> str:
        """Route of the provider's status callbacks for an outbound call (``{call_id}``)."""
        return f"/telephony/{self.name}/status/{{call_id}}"

    @property
    def transfer_path(self) -> str:
        """Route the provider fetches a transfer's markup from (``{call_id}``)."""
        return f"/telephony/{self.name}/transfer/{{call_id}}"
