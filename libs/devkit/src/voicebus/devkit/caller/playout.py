"""The caller's loudspeaker: a playout buffer drained at real time, with Twilio's mark rules.

Twilio queues the audio a server sends and plays it at real time. A ``mark`` is
queued behind that audio and echoed back when everything sent before it has
played; a ``clear`` drops the unplayed audio and echoes every pending mark at
once. Positions count samples ever appended, so "all audio received before the
mark" is a number, and cleared audio still moves the playhead past its marks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from voicebus.devkit.caller.audio import FRAME_SAMPLES, first_audible


@dataclass(frozen=True)
class Played:
    """What one tick of the loudspeaker played.

    Attributes:
        pcm: exactly the requested number of samples (PCM16LE), padded with silence
            when the buffer ran dry.
        audio_samples: how many of them came from the buffer (the rest is padding).
        start_index: stream position of the first buffered sample played.
        marks: names of marks to echo now, in the order they were received.
    """

    pcm: bytes
    audio_samples: int
    start_index: int
    marks: list[str] = field(default_factory=list)

    def first_audible_at_or_after(self, index: int) -> int | None:
        """Offset in ``pcm`` of the first audible sample whose stream position is ≥ ``index``."""
        skip = max(0, index - self.start_index)
        if skip >= self.audio_samples:
            return None
        return first_audible(self.pcm[: 2 * self.audio_samples], skip)


class Playout:
    """Audio waiting to be played, and the marks queued behind it."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._marks: deque[tuple[int, str]] = deque()
        self.appended = 0
        """Samples ever received."""
        self.consumed = 0
        """Samples played or cleared: the playhead's stream position."""

    @property
    def pending_samples(self) -> int:
        """Samples received and not yet played."""
        return len(self._buffer) // 2

    @property
    def pending_marks(self) -> int:
        """Marks waiting for their audio to play."""
        return len(self._marks)

    def push_audio(self, pcm: bytes) -> None:
        """Queue PCM16LE audio behind everything received so far."""
        if len(pcm) % 2:
            raise ValueError("PCM16 audio has an even number of bytes")
        self._buffer += pcm
        self.appended += len(pcm) // 2

    def push_mark(self, name: str) -> list[str]:
        """Queue a mark behind the audio received so far.

        Returns:
            The marks to echo now: this one if nothing is left to play before it.
        """
        self._marks.append((self.appended, name))
        return self._release()

    def play(self, samples: int = FRAME_SAMPLES) -> Played:
        """Play ``samples`` samples (one tick) and release the marks they reach."""
        take = min(samples, self.pending_samples)
        start = self.consumed
        pcm = bytes(self._buffer[: 2 * take])
        del self._buffer[: 2 * take]
        self.consumed += take
        if take < samples:
            pcm += bytes(2 * (samples - take))
        return Played(pcm=pcm, audio_samples=take, start_index=start, marks=self._release())

    def clear(self) -> list[str]:
        """Drop the unplayed audio.

        Returns:
            Every pending mark, to echo now.
        """
        self._buffer.clear()
        self.consumed = self.appended
        return self._release()

    def _release(self) -> list[str]:
        ready: list[str] = []
        while self._marks and self._marks[0][0] <= self.consumed:
            ready.append(self._marks.popleft()[1])
        return ready
