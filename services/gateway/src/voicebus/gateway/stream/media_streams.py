"""The media WebSocket server as part of the gateway service: started and stopped with it.

Connected (NATS up): the frame publisher connects and the stream-claims bucket
opens. Started (broker up, so ``call.started`` can be stored): the server
listens. Shutdown (before the broker and NATS close): the server stops and every
call ends, then the frame publisher flushes and closes.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicebus.contracts.streams import STREAM_CLAIMS
from voicebus.gateway.browser.routes import PROVIDER as BROWSER
from voicebus.gateway.context import Gateway
from voicebus.gateway.providers import providers
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.stream.media_call import StreamHub
from voicebus.gateway.stream.server import MediaServer
from voicebus.gateway.stream.stream_claims import StreamClaims
from voicebus.runtime.frames import FramePublisher
from voicebus.runtime.service import Service


def media_providers(settings: GatewaySettings) -> list[Provider]:
    """The providers whose media WebSockets are served: every registered one, and the
    browser only while its page is enabled (its session endpoint has no authentication)."""
    served = providers()
    return [*served, BROWSER] if settings.browser_calls_enabled else served


class MediaStreams:
    """The media server, its frame publisher and stream claims, hooked into ``service``.

    Args:
        service: the gateway service.
        gateway: what handlers share.
        providers: the providers whose media WebSockets are served.
    """

    def __init__(self, service: Service, gateway: Gateway, providers: Sequence[Provider]) -> None:
        settings = gateway.settings
        self._settings = settings
        self.frames = FramePublisher(settings, name=f"{settings.connection_name}/frames")
        self.claims = StreamClaims()
        self.server = MediaServer(StreamHub(gateway, self.frames, self.claims), providers)
        service.on_connected(self._open)
        service.on_startup(self._listen)
        service.on_shutdown(self._close_frames)  # shutdown hooks run in reverse: after the server
        service.on_shutdown(self._stop_server)

    async def _open(self, service: Service) -> None:
        await self.frames.start()
        self.claims.open(await service.js.key_value(STREAM_CLAIMS.bucket))

    async def _listen(self, _service: Service) -> None:
        await self.server.start()

    async def _stop_server(self, _service: Service) -> None:
        await self.server.stop(
            timeout_s=float(self._settings.shutdown_timeout_s),
            drain_s=self._settings.drain_timeout_s,
        )

    async def _close_frames(self, _service: Service) -> None:
        await self.frames.close()
