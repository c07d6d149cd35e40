"""Caller → bus: the caller's audio and the playback marks the provider echoes.

Synchronous, inside the WebSocket's frame callback: each 20 ms of audio becomes
one ``vb.audio.<call>.in`` message (PCM16LE, header block built by one bytes
format), each echoed mark one ``vb.audio.<call>.played`` message; both are only
queued here, and the frame publisher writes every queued message of one event
loop iteration at once. A longer chunk (Exotel: 100 ms) goes out as 20 ms frames.
"""

from __future__ import annotations

from voicebus.contracts import subjects
from voicebus.contracts.audio import PlaybackMark, header_block
from voicebus.gateway.calls import EchoOutcome, InboundClock, PlaybackTracker
from voicebus.gateway.metrics import IgnoreReason, count_ignored
from voicebus.gateway.providers.base import MarkPlayed, MediaIn
from voicebus.gateway.stream.ports import FrameSink


class CallerToBus:
    """The caller's side of one call, towards the bus.

    Args:
        provider: the provider's name (metric label).
        call_id: the call.
        sample_rate: the call's rate on the bus.
        frames: where messages are queued.
        tracker: the call's playback marks (shared with the bus→caller part).
    """

    def __init__(
        self,
        provider: str,
        call_id: str,
        sample_rate: int,
        frames: FrameSink,
        tracker: PlaybackTracker,
    ) -> None:
        self._provider = provider
        self._rate = sample_rate
        self._frame_bytes = sample_rate // 25  # 20 ms of PCM16
        self._frames = frames
        self._tracker = tracker
        self._clock = InboundClock()
        self._audio_in = subjects.audio_in(call_id).encode()
        self._played = subjects.audio_played(call_id).encode()

    def media(self, event: MediaIn) -> None:
        """Publish one chunk of caller audio as 20 ms frames."""
        pcm, size, rate = event.pcm, self._frame_bytes, self._rate
        if len(pcm) <= size:
            seq, ts_ms = self._clock.stamp(event.seq, event.ts_ms, len(pcm) * 500 // rate)
            if not self._frames.publish(self._audio_in, header_block(rate, seq, ts_ms), pcm):
                count_ignored(self._provider, IgnoreReason.BUS_UNAVAILABLE)
            return
        ts: int | None = event.ts_ms
        for start in range(0, len(pcm), size):
            piece = pcm[start : start + size]
            seq, ts_ms = self._clock.stamp(None, ts, len(piece) * 500 // rate)
            ts = None
            if not self._frames.publish(self._audio_in, header_block(rate, seq, ts_ms), piece):
                count_ignored(self._provider, IgnoreReason.BUS_UNAVAILABLE)

    def mark(self, event: MarkPlayed) -> None:
        """The provider echoed a mark: publish the playback it confirms, if any."""
        outcome = self._tracker.echoed(event.name)
        if isinstance(outcome, PlaybackMark):
            if not self._frames.publish(self._played, outcome.header_block(), b""):
                count_ignored(self._provider, IgnoreReason.BUS_UNAVAILABLE)
        elif outcome is EchoOutcome.UNKNOWN:
            count_ignored(self._provider, IgnoreReason.UNKNOWN_MARK)
