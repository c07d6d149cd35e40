"""Call control of one live call: ``vb.ctl.<call>.{clear,hangup,transfer,dtmf,keypad}``.

``clear`` acts at once (barge-in must cut the agent off within a frame); a
hang-up, a transfer and keypad tones run as tasks of their own, cancelled when
the call ends. A hang-up after playback first waits until the caller heard the
agent's audio (every mark echoed, no audio for the quiet period), within the
drain timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Final, Protocol

from nats.aio.msg import Msg
from pydantic import ValidationError

from voicebus.contracts.commands import (
    Clear,
    HangUp,
    MaskKeypad,
    SendDtmf,
    Transfer,
    parse_control,
)
from voicebus.gateway.live import tone_chunks
from voicebus.gateway.parameters import CallIdentity
from voicebus.gateway.stream.ports import CallEnder, Playback

log = logging.getLogger(__name__)

POLL_S: Final = 0.05


class ProviderControl(Protocol):
    """Transfer and keypad tones through the provider's API (``live.LiveControl``)."""

    async def transfer(
        self, call: CallIdentity, provider_call_id: str | None, command: Transfer
    ) -> bool:
        """Ask the provider to transfer; True when it took the order."""
        ...

    async def send_dtmf(
        self, call: CallIdentity, provider_call_id: str | None, command: SendDtmf
    ) -> bool:
        """Send tones through the provider; False: play them in-band."""
        ...


class CallControl:
    """The commands the gateway owns for one live call.

    Args:
        call: the call.
        provider_call_id: the provider's id for it (REST call control).
        sample_rate: the call's rate (in-band tones).
        min_chunk_bytes: the provider's smallest media message (in-band tones).
        playback: the bus→caller part.
        ender: ends the call (closes the caller's socket).
        provider: the provider's REST call control.
        drain_timeout_s: longest wait for playback before a hang-up.
        quiet_s: agent silence that counts as "done speaking" before a hang-up.
    """

    def __init__(
        self,
        call: CallIdentity,
        provider_call_id: str | None,
        sample_rate: int,
        min_chunk_bytes: int,
        playback: Playback,
        ender: CallEnder,
        provider: ProviderControl,
        *,
        drain_timeout_s: float,
        quiet_s: float,
    ) -> None:
        self._call = call
        self._provider_call_id = provider_call_id
        self._rate = sample_rate
        self._min_chunk = min_chunk_bytes
        self._playback = playback
        self._ender = ender
        self._provider = provider
        self._drain_timeout_s = drain_timeout_s
        self._quiet_s = quiet_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self.transferring = False
        """A transfer was ordered: the provider may end the stream as it bridges."""
        self.keypad_masked = False
        """The orchestrator asked for the caller's keys to be masked in stored events."""

    async def on_control(self, msg: Msg) -> None:
        """One command for this call."""
        if self._stopped:
            return
        try:
            command = parse_control(msg.data)
        except ValidationError as err:
            log.warning("invalid control command", extra={"errors": err.error_count()})
            return
        match command:
            case Clear():
                self._playback.clear(command.data.utterance_id)
            case HangUp():
                self._spawn(self._hang_up(command))
            case Transfer():
                self._spawn(self._transfer(command))
            case SendDtmf():
                self._spawn(self._send_dtmf(command))
            case MaskKeypad():
                self.keypad_masked = command.data.masked

    async def stop(self) -> None:
        """Cancel what is still running (the call ended)."""
        self._stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _hang_up(self, command: HangUp) -> None:
        if command.data.after_playback:
            await self.drain()
        self._ender.end(command.data.reason)

    async def drain(self) -> None:
        """Wait until the caller heard the agent's audio, within the drain timeout.

        Done when every mark sent was echoed and no agent audio arrived for the
        quiet period (counted from the hang-up too: the goodbye's first frame may
        still be in text-to-speech).
        """
        playback = self._playback
        now = time.monotonic()
        deadline, asked_at = now + self._drain_timeout_s, now
        while now < deadline and not self._stopped:
            idle_s = now - max(playback.last_audio_at, asked_at)
            flushed = idle_s >= 2 * POLL_S and playback.flush_mark()
            if not flushed and playback.all_played and idle_s >= self._quiet_s:
                return
            await asyncio.sleep(POLL_S)
            now = time.monotonic()
        if not self._stopped:
            log.warning("hang-up before playback confirmed", extra={"call_id": self._call.call_id})

    async def _transfer(self, command: Transfer) -> None:
        self.transferring = True  # the provider may end the stream at once
        ok = await self._provider.transfer(self._call, self._provider_call_id, command)
        if not ok:
            self.transferring = False

    async def _send_dtmf(self, command: SendDtmf) -> None:
        """Through the provider's API where it can; else as in-band tones on the stream."""
        call = self._call
        if await self._provider.send_dtmf(call, self._provider_call_id, command):
            return
        for pcm in tone_chunks(command.data.digits, self._rate, self._min_chunk):
            if not self._playback.send_audio(pcm):
                return
        log.info("dtmf sent in-band", extra={"call_id": call.call_id})

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
