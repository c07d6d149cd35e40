"""Live-call helpers of the media session: audio chunking and provider call control.

- :class:`AudioChunker` (pure): some providers play agent audio well only in
  larger messages (Exotel: at least 3,200 bytes, multiples of 320); frames are
  gathered until a chunk is full or a playback mark is due.
- :class:`LiveControl`: transfer and keypad tones through the provider's REST
  API (its :class:`~.providers.outbound.Dialer`), with the tenant's account. A
  provider with transfer markup also gets the signed URL of the gateway's
  transfer route (``transfers.py``). A failure becomes a ``call.error``; the
  call goes on.
"""

from __future__ import annotations

import logging
import time

from voicebus.contracts.commands import SendDtmf, Transfer
from voicebus.contracts.events import ErrorCode
from voicebus.gateway.call_events import call_error
from voicebus.gateway.context import Gateway, UnknownAccountError
from voicebus.gateway.parameters import CallIdentity
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.outbound import Dialer
from voicebus.gateway.tones import dtmf_pcm
from voicebus.gateway.transfers import transfer_url
from voicebus.runtime.errors import ConfigurationError, ProviderError
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)


class AudioChunker:
    """Gathers PCM frames into messages of at least ``min_bytes`` (0: every frame at once).

    Args:
        min_bytes: smallest message; a flushed tail is padded with silence to it.
    """

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def push(self, pcm: bytes, *, flush: bool) -> bytes | None:
        """Add a frame; the audio to send now, if a chunk is full or ``flush`` is asked."""
        if not self.min_bytes:
            return pcm
        self._parts.append(pcm)
        self._size += len(pcm)
        if self._size >= self.min_bytes or flush:
            return self.take()
        return None

    def take(self) -> bytes | None:
        """Everything gathered (padded to the minimum), or None when nothing is."""
        if not self._size:
            return None
        pcm = b"".join(self._parts)
        self.clear()
        if len(pcm) < self.min_bytes:
            pcm += bytes(self.min_bytes - len(pcm))
        return pcm

    def clear(self) -> None:
        """Drop what was gathered (a ``clear``)."""
        self._parts.clear()
        self._size = 0


def tone_chunks(digits: str, sample_rate: int, min_bytes: int) -> list[bytes]:
    """In-band DTMF for ``digits`` in messages of ``min_bytes`` (at least 200 ms), zero-padded."""
    step = max(sample_rate // 25 * 10, min_bytes)
    pcm = dtmf_pcm(digits, sample_rate)
    pcm += bytes(-len(pcm) % step)
    return [pcm[start : start + step] for start in range(0, len(pcm), step)]


class LiveControl:
    """Transfer and keypad tones for live calls of one provider.

    Args:
        gateway: settings, the bus and accounts.
        provider: the provider carrying the calls.
    """

    def __init__(self, gateway: Gateway, provider: Provider) -> None:
        self._gw = gateway
        self._provider = provider

    async def transfer(
        self, call: CallIdentity, provider_call_id: str | None, command: Transfer
    ) -> bool:
        """Ask the provider to connect the caller to the target; True when it took the order.

        Warm transfers pass the announcement to the provider, which says it to the
        target before bridging where it can; otherwise they go through cold.
        """
        data = command.data
        dialer = await self._dialer(call, provider_call_id, command.type)
        if dialer is None or provider_call_id is None:
            return False
        markup_url = None
        if self._provider.transfer_markup is not None:
            path = self._provider.transfer_path.format(call_id=call.call_id)
            base = self._gw.settings.public_http_url(path)
            markup_url = transfer_url(
                base, call, data.to_number, data.announcement, self._gw.stream_key, time.time()
            )
        try:
            await dialer.transfer(
                provider_call_id,
                data.to_number,
                announcement=data.announcement,
                markup_url=markup_url,
            )
        except (ProviderError, ConfigurationError) as err:
            await self._failed(call, command.type, err)
            return False
        finally:
            await dialer.aclose()
        log.info(
            "call transferred",
            extra={"call_id": call.call_id, "mode": data.mode.value, **pii(to=data.to_number)},
        )
        return True

    async def send_dtmf(
        self, call: CallIdentity, provider_call_id: str | None, command: SendDtmf
    ) -> bool:
        """Send keypad tones through the provider; False: the caller should play them in-band."""
        if self._provider.dialer is None or provider_call_id is None:
            return False
        dialer = await self._dialer(call, provider_call_id, command.type, report=False)
        if dialer is None:
            return False
        try:
            return await dialer.send_dtmf(provider_call_id, command.data.digits)
        except (ProviderError, ConfigurationError) as err:
            await self._failed(call, command.type, err)
            return False
        finally:
            await dialer.aclose()

    async def _dialer(
        self, call: CallIdentity, provider_call_id: str | None, what: str, *, report: bool = True
    ) -> Dialer | None:
        factory = self._provider.dialer
        if factory is None or provider_call_id is None:
            if report:
                await self._error(call, f"{what} is not supported by {self._provider.name}")
            return None
        try:
            account = await self._gw.account(call.tenant_id, self._provider.name)
            return factory(account)
        except (UnknownAccountError, ConfigurationError) as err:
            if report:
                await self._error(call, f"{what} needs a {self._provider.name} account: {err}")
            return None

    async def _failed(self, call: CallIdentity, what: str, err: Exception) -> None:
        code = err.code if isinstance(err, ProviderError) else None
        log.warning(
            "call control failed", extra={"call_id": call.call_id, "what": what, "code": code}
        )
        await self._error(call, f"{self._provider.name}: {what} failed: {err}")

    async def _error(self, call: CallIdentity, message: str) -> None:
        gw = self._gw
        await gw.publish(
            call_error(call.tenant_id, call.call_id, gw.source, ErrorCode.PROVIDER_ERROR, message)
        )
