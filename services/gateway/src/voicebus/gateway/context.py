"""What the gateway's HTTP and WebSocket handlers share: settings and the bus."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client

from voicebus.contracts.events import Envelope
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service


@dataclass(frozen=True, slots=True)
class Gateway:
    """The running gateway as its handlers see it.

    Attributes:
        service: the service kit (connections are usable once it started).
        settings: the gateway's settings.
    """

    service: Service
    settings: GatewaySettings

    @property
    def nc(self) -> Client:
        """Raw NATS client: audio frames, playback marks, control commands, requests."""
        return self.service.nc

    @property
    def source(self) -> str:
        """``gateway/<instance>``: the ``source`` of the events this gateway publishes."""
        return self.settings.connection_name

    @property
    def stream_key(self) -> bytes:
        """Key that signs stream parameters."""
        return self.settings.stream_secret.get_secret_value().encode()

    async def publish(self, event: Envelope) -> None:
        """Store ``event`` in ``VB_EVENTS`` (waits for the server's ack)."""
        await publish_event(self.service.broker, event)
