"""Frame chunking and real-time pacing of agent audio, and the call's media clock.

Pure: times are seconds of a monotonic clock passed in by the caller.

Agent audio is sent at real time with a small lead: the provider never holds more
than ``lead_ms`` of audio beyond what is playing, so a barge-in's ``clear`` has
little to flush and the playback marks stay close to what the caller hears.
"""

from __future__ import annotations

from typing import Final

from voicebus.contracts.audio import BYTES_PER_SAMPLE

DEFAULT_FRAME_MS: Final = 20
_EPSILON_S: Final = 1e-6  # sums of 0.02 s drift in floating point


def bytes_per_ms(sample_rate: int) -> float:
    """PCM16 mono bytes per millisecond of audio: 16 at 8 kHz."""
    return sample_rate * BYTES_PER_SAMPLE / 1000


def audio_ms(byte_count: int, sample_rate: int) -> float:
    """Duration of ``byte_count`` bytes of PCM16 mono audio."""
    return byte_count / bytes_per_ms(sample_rate)


class FrameSlicer:
    """Cuts a stream of PCM16 pieces of any size into fixed-size frames.

    Args:
        frame_bytes: bytes per frame (320 for 20 ms at 8 kHz).
    """

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0 or frame_bytes % BYTES_PER_SAMPLE:
            raise ValueError("frame_bytes must be a positive whole number of PCM16 samples")
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes held back because they do not fill a frame yet."""
        return len(self._pending)

    def push(self, pcm: bytes) -> list[bytes]:
        """Add audio; return the whole frames now available, in order."""
        self._pending += pcm
        whole = len(self._pending) - len(self._pending) % self.frame_bytes
        frames = [
            bytes(self._pending[i : i + self.frame_bytes])
            for i in range(0, whole, self.frame_bytes)
        ]
        del self._pending[:whole]
        return frames

    def flush(self) -> bytes | None:
        """The held-back tail padded with silence to a whole frame, or None if nothing is held."""
        if not self._pending:
            return None
        frame = bytes(self._pending) + bytes(self.frame_bytes - len(self._pending))
        self._pending.clear()
        return frame


class Pacer:
    """When the next frame of a call's outgoing audio may be sent.

    The provider plays what it receives back to back. ``playing_until`` is when
    the audio sent so far will have finished playing; a frame may be sent while
    less than ``lead_ms`` of audio is waiting ahead of the one playing now. An
    empty buffer (nothing sent for a while) restarts playback at the next send.

    Args:
        frame_ms: duration of one frame.
        lead_ms: how far ahead of real time audio may be sent.
    """

    def __init__(self, frame_ms: int = DEFAULT_FRAME_MS, lead_ms: int = 160) -> None:
        if frame_ms <= 0 or lead_ms < 0:
            raise ValueError("frame_ms must be positive and lead_ms not negative")
        self.frame_s = frame_ms / 1000
        self.lead_s = lead_ms / 1000
        self.playing_until = 0.0

    def buffered_s(self, now: float) -> float:
        """Audio sent but not yet played, in seconds."""
        return max(0.0, self.playing_until - now)

    def wait_s(self, now: float) -> float:
        """Seconds until the next frame may be sent (0: now)."""
        wait = self.buffered_s(now) - self.lead_s
        return wait if wait > _EPSILON_S else 0.0

    def sent(self, now: float) -> float:
        """Record one frame sent at ``now``; returns when it starts playing."""
        starts = max(self.playing_until, now)
        self.playing_until = starts + self.frame_s
        return starts

    def clear(self, now: float) -> None:
        """The provider dropped what it had not played (a ``clear``)."""
        self.playing_until = min(self.playing_until, now)

    def drained(self, now: float) -> bool:
        """Everything sent has played."""
        return self.playing_until <= now


class MediaClock:
    """Maps the monotonic clock to the call's media timeline (ms since the stream started).

    Caller frames carry the provider's media timestamp; the frame that arrived with
    the least delay gives the best offset between the two clocks. Until a caller
    frame arrives, the timeline starts at ``origin``.

    Args:
        origin: the monotonic time the call started, for the timeline before any frame.
    """

    def __init__(self, origin: float) -> None:
        self._offset_ms = -origin * 1000
        self._anchored = False

    @property
    def anchored(self) -> bool:
        """Whether a caller frame has set the offset."""
        return self._anchored

    def observe(self, ts_ms: int, now: float) -> None:
        """A caller frame with media timestamp ``ts_ms`` arrived at ``now``."""
        offset = ts_ms - now * 1000
        if not self._anchored or offset > self._offset_ms:
            self._offset_ms = offset
            self._anchored = True

    def media_ms(self, at: float) -> int:
        """The media timestamp of monotonic time ``at`` (never negative)."""
        return max(0, round(at * 1000 + self._offset_ms))
