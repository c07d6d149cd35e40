"""Fakes of the media call's protocols (``gateway.stream.ports``) for unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from voicebus.contracts.commands import SendDtmf, Transfer
from voicebus.contracts.events import EndReason
from voicebus.gateway.parameters import CallIdentity


@dataclass
class FakeSocket:
    """A caller socket that records what is sent (``CallerSocket`` and ``CallEnder``)."""

    sent: list[tuple[bytes, bool]] = field(default_factory=list)
    ended: list[tuple[EndReason, int]] = field(default_factory=list)
    closing: bool = False

    def send(self, message: bytes, *, binary: bool = False) -> bool:
        if self.closing:
            return False
        self.sent.append((message, binary))
        return True

    def end(self, reason: EndReason, code: int = 1000) -> None:
        self.ended.append((reason, code))
        self.closing = True


@dataclass
class FakeFrames:
    """A frame sink that records messages, or refuses them while ``full``."""

    published: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    full: bool = False

    def publish(self, subject: bytes, headers: bytes, payload: bytes) -> bool:
        if self.full:
            return False
        self.published.append((subject, headers, payload))
        return True


@dataclass
class FakeProviderControl:
    """Provider REST call control that accepts or refuses every order."""

    accepts: bool = True
    transfers: list[Transfer] = field(default_factory=list)
    tones: list[SendDtmf] = field(default_factory=list)

    async def transfer(
        self, call: CallIdentity, provider_call_id: str | None, command: Transfer
    ) -> bool:
        self.transfers.append(command)
        return self.accepts

    async def send_dtmf(
        self, call: CallIdentity, provider_call_id: str | None, command: SendDtmf
    ) -> bool:
        self.tones.append(command)
        return self.accepts


@dataclass
class FakeMsg:
    """What a nats-py subscription hands its callback."""

    data: bytes
    headers: dict[str, str] | None = None
