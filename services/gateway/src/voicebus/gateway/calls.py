"""State of one live call's media bridge, without I/O.

- :class:`PlaybackTracker`: which agent audio the caller has heard. The
  gateway sends a provider mark after every N frames and after an utterance's
  last frame; the provider echoes a mark once the audio before it has played,
  which becomes a :class:`PlaybackMark` on ``vb.audio.<call>.played``. After a
  ``clear`` the provider also returns every mark still pending, for audio that
  was dropped, not played: those are swallowed. Frames of a cleared utterance
  that were already on the bus are dropped too.
- :class:`InboundClock`: the sequence number and media timestamp of each
  caller frame (the provider's where it sends them).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from voicebus.contracts.audio import AudioFrame, PlaybackMark

NO_UTTERANCE: Final = "unknown"
"""Utterance id used for agent frames that carry none."""


class EchoOutcome(Enum):
    """What an echoed mark that is not a playback confirmation means."""

    CLEARED = "cleared"
    """Returned by the provider for audio dropped by ``clear``: not played."""
    UNKNOWN = "unknown"
    """Not a mark this call sent (or echoed twice)."""


class PlaybackTracker:
    """Marks sent, marks echoed, and what that says about played audio.

    Args:
        mark_every: send a mark after this many frames (and after a last frame).
    """

    def __init__(self, mark_every: int = 5) -> None:
        if mark_every < 1:
            raise ValueError("mark_every must be at least 1")
        self._mark_every = mark_every
        self._marks_sent = 0
        self._since_mark = 0
        self._last_utterance: str | None = None
        self._last_seq = 0
        self._last_ms = 0.0
        self._sent_ms: dict[str, float] = {}
        self._pending: dict[str, PlaybackMark] = {}
        self._cleared: set[str] = set()
        self._cut: set[str] = set()

    @property
    def all_played(self) -> bool:
        """True when every mark sent has been echoed (or dropped by a clear)."""
        return not self._pending

    @property
    def pending(self) -> int:
        """Marks sent and not yet echoed."""
        return len(self._pending)

    def admit(self, frame: AudioFrame) -> bool:
        """Whether ``frame`` may be played: False for frames of a cleared utterance."""
        return (frame.utterance_id or NO_UTTERANCE) not in self._cut

    def admits(self, utterance: str) -> bool:
        """Whether frames of ``utterance`` may be played (:meth:`admit` for the hot path)."""
        return utterance not in self._cut

    def sent(self, frame: AudioFrame) -> str | None:
        """Record that ``frame`` was sent; the name of a mark to send after it, if one is due."""
        utterance = frame.utterance_id or NO_UTTERANCE
        return self.sent_audio(utterance, frame.seq, frame.duration_ms, frame.last)

    def sent_audio(self, utterance: str, seq: int, duration_ms: float, last: bool) -> str | None:
        """:meth:`sent` from a frame's fields (the hot path builds no frame object)."""
        sent_ms = self._sent_ms.get(utterance, 0.0) + duration_ms
        if last:
            self._sent_ms.pop(utterance, None)
        else:
            self._sent_ms[utterance] = sent_ms
        self._last_utterance, self._last_seq, self._last_ms = utterance, seq, sent_ms
        self._since_mark += 1
        if last or self._since_mark >= self._mark_every:
            return self._new_mark()
        return None

    def flush(self) -> str | None:
        """A mark for frames sent since the last one, if any (before a hang-up drains)."""
        return self._new_mark() if self._since_mark else None

    def _new_mark(self) -> str:
        utterance = self._last_utterance or NO_UTTERANCE
        mark = PlaybackMark(utterance, self._last_seq, round(self._last_ms))
        self._marks_sent += 1
        name = f"{mark.utterance_id}:{mark.seq}:{mark.played_ms}:{self._marks_sent}"
        self._pending[name] = mark
        self._since_mark = 0
        return name

    def echoed(self, name: str) -> PlaybackMark | EchoOutcome:
        """The provider echoed mark ``name``: the playback it confirms, or why it confirms none."""
        mark = self._pending.pop(name, None)
        if mark is not None:
            return mark
        if name in self._cleared:
            self._cleared.discard(name)
            return EchoOutcome.CLEARED
        return EchoOutcome.UNKNOWN

    def clear(self, utterance_id: str | None) -> None:
        """Audio not yet played was dropped (``clear``): its marks will not mean "played".

        Args:
            utterance_id: the utterance being cut; None means the one last sent.
                Its frames still arriving from the bus are dropped by :meth:`admit`.
        """
        self._cleared.update(self._pending)
        self._pending.clear()
        self._since_mark = 0
        cut = utterance_id or self._last_utterance
        if cut is not None:
            self._cut.add(cut)
            self._sent_ms.pop(cut, None)


class InboundClock:
    """Sequence number and media timestamp of each caller frame.

    The provider's chunk number and timestamp are used when it sends them;
    otherwise frames are numbered from 0 and timed by their duration.
    """

    def __init__(self) -> None:
        self._next_seq = 0
        self._next_ts_ms = 0

    def stamp(self, seq: int | None, ts_ms: int | None, duration_ms: int) -> tuple[int, int]:
        """``(seq, ts_ms)`` of the next frame, which lasts ``duration_ms``."""
        if seq is None or seq < 0:
            seq = self._next_seq
        if ts_ms is None or ts_ms < 0:
            ts_ms = self._next_ts_ms
        self._next_seq = seq + 1
        self._next_ts_ms = ts_ms + duration_ms
        return seq, ts_ms
