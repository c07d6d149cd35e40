"""Bus → caller: agent audio to the provider's socket, with playback marks; ``clear``.

A raw nats-py subscription on ``vb.audio.<call>.out`` calls :meth:`BusToCaller.on_audio`
for every agent frame; the frame becomes the provider's media message (a bytes
template) and is written to the socket at once, with a mark every
``mark_every_frames`` frames (100 ms by default) and after an utterance's last
frame. Providers that play only larger messages get frames gathered first
(``AudioChunker``); marks then fall on message boundaries.
"""

from __future__ import annotations

import logging
import time

from nats.aio.msg import Msg

from voicebus.contracts.audio import (
    HEADER_LAST,
    HEADER_RATE,
    HEADER_SEQ,
    HEADER_UTTERANCE,
    MAX_FRAME_BYTES,
)
from voicebus.gateway.calls import NO_UTTERANCE, PlaybackTracker
from voicebus.gateway.live import AudioChunker
from voicebus.gateway.providers.base import CallEventRelay, StreamCodec
from voicebus.gateway.stream.ports import CallerSocket

log = logging.getLogger(__name__)


class BusToCaller:
    """The agent's side of one call, towards the caller (implements ``ports.Playback``).

    Args:
        call_id: the call (for logs).
        codec: the provider's stream codec, bound to the started stream.
        socket: the caller's socket.
        tracker: the call's playback marks (shared with the caller→bus part).
        chunker: gathers frames into the provider's smallest message.
    """

    def __init__(
        self,
        call_id: str,
        codec: StreamCodec,
        socket: CallerSocket,
        tracker: PlaybackTracker,
        chunker: AudioChunker,
    ) -> None:
        self._call_id = call_id
        self._codec = codec
        self._socket = socket
        self._tracker = tracker
        self._chunker = chunker
        self._rate = codec.sample_rate
        self._rate_header = str(codec.sample_rate)
        self._ms_per_byte = 500.0 / codec.sample_rate  # PCM16 mono
        self._binary = codec.binary_media
        self._last_audio_at = 0.0
        self._bad_frames = 0

    @property
    def all_played(self) -> bool:
        """Every mark sent has been echoed (or dropped by a clear)."""
        return self._tracker.all_played

    @property
    def last_audio_at(self) -> float:
        """Monotonic time of the last agent frame received (0 if none)."""
        return self._last_audio_at

    async def on_audio(self, msg: Msg) -> None:
        """One agent frame from ``vb.audio.<call>.out``.

        The frame is checked as ``contracts.audio.decode_frame`` would (rate, whole
        samples, at most a second, a sequence number), reading only the headers
        needed: this runs 50 times a second per call.
        """
        if self._socket.closing:
            return
        headers, pcm = msg.headers, msg.data
        if headers is None or headers.get(HEADER_RATE) != self._rate_header:
            self._bad_frame()  # no headers, or not the call's rate
            return
        size = len(pcm)
        try:
            seq = int(headers[HEADER_SEQ])
        except (KeyError, ValueError):
            seq = -1
        if size & 1 or size > MAX_FRAME_BYTES or seq < 0:
            self._bad_frame()
            return
        self._last_audio_at = time.monotonic()
        utterance = headers.get(HEADER_UTTERANCE) or NO_UTTERANCE
        tracker = self._tracker
        if not tracker.admits(utterance):
            return
        last = headers.get(HEADER_LAST) == "1"
        chunk = self._chunker.push(pcm, flush=last)
        if chunk is not None and not self.send_audio(chunk):
            return
        name = tracker.sent_audio(utterance, seq, size * self._ms_per_byte, last)
        if name is not None:
            self._send_mark(name)

    def send_audio(self, pcm: bytes) -> bool:
        """Play ``pcm`` now (one media message); False if the socket is gone."""
        return self._socket.send(self._codec.media(pcm), binary=self._binary)

    def flush_mark(self) -> bool:
        """A mark for the audio sent since the last one, if any (a hang-up drains)."""
        name = self._tracker.flush()
        if name is None:
            return False
        self._send_mark(name)
        return True

    def _send_mark(self, name: str) -> None:
        pcm = self._chunker.take()  # the audio a mark covers goes first
        if pcm is None or self.send_audio(pcm):
            self._socket.send(self._codec.mark(name))

    def clear(self, utterance_id: str | None) -> None:
        """Drop agent audio not yet played: at the provider, here and still on the bus.

        Marks echoed from here on are for dropped audio; a mark whose audio played
        just before the provider got the clear is dropped too (the caller is
        reported to have heard slightly less, never more).
        """
        self._tracker.clear(utterance_id)
        self._chunker.clear()
        self._socket.send(self._codec.clear())

    async def on_call_event(self, msg: Msg) -> None:
        """A call event the far end shows (the browser page's transcript)."""
        codec = self._codec
        if self._socket.closing or not isinstance(codec, CallEventRelay):
            return
        message = codec.relay(msg.data)
        if message is not None:
            self._socket.send(message)

    def _bad_frame(self) -> None:
        self._bad_frames += 1
        if self._bad_frames == 1:  # once per call: a broken producer sends 50 per second
            log.warning("invalid agent audio frame dropped", extra={"call_id": self._call_id})
