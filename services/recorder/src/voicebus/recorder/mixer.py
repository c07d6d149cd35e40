"""Places mono frames on a stereo timeline and streams it to a WAV sink. Pure: no bus.

Sample ``n`` of the recording is ``n / sample_rate`` seconds after the call's
media started: a frame stamped ``ts_ms`` starts at sample
``ts_ms * sample_rate // 1000`` (exact for every rate the bus allows). Each
channel is written, never summed, so a duplicated or overlapping frame
replaces what was there instead of corrupting it; wherever nothing was sent,
the channel stays silent.

Memory is bounded: only the newest ``window_ms`` (plus one ``chunk_ms``) of
the timeline is held in memory. Older audio is final and goes to the sink;
a frame that arrives after its place was written is dropped (or its late
part is). A frame stamped implausibly far ahead is refused rather than
filling the disk with silence.

A channel can be silenced over a span of the timeline (sensitive keypad input):
the span is applied when audio leaves the window for the sink, so a span opened
or closed a little after audio of its time arrived still covers exactly that
audio; only a part of a span older than the window is already written.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from voicebus.recorder.errors import RecordingClosedError

CHANNELS: Final = 2
_SAMPLE: Final[np.dtype[np.int16]] = np.dtype("<i2")  # WAV samples are little-endian


class Channel(IntEnum):
    """Stereo channel of each side of the call."""

    CALLER = 0
    """Left: ``audio.in``."""
    AGENT = 1
    """Right: ``audio.out``."""


class Placement(Enum):
    """What became of a frame."""

    PLACED = "placed"
    PARTLY_LATE = "partly_late"
    """Its start was already written: only the rest was placed."""
    LATE = "late"
    """Entirely behind the window: dropped."""
    TOO_FAR = "too_far"
    """Stamped beyond the allowed jump or the file's size limit: dropped."""
    EMPTY = "empty"


class Sink(Protocol):
    """Where finished stereo audio goes (:class:`voicebus.recorder.wav.WavWriter`)."""

    @property
    def room(self) -> int:
        """Sample frames the sink can still take."""
        ...

    def append(self, block: bytes | memoryview) -> None:
        """Write interleaved PCM16LE stereo sample frames."""
        ...

    def fix_header(self) -> None:
        """Make what was written so far readable."""
        ...


def resample(samples: NDArray[np.int16], src_rate: int, dst_rate: int) -> NDArray[np.int16]:
    """Convert one frame's samples to ``dst_rate``, statelessly.

    Frames are placed by timestamp, so each is converted on its own. An
    integer down-ratio averages each block of samples (a crude low-pass that
    keeps aliasing down); any other ratio interpolates linearly. Good enough
    for a record of a producer that ignored the call's rate, not for fidelity.
    """
    if src_rate == dst_rate or samples.size == 0:
        return samples
    if src_rate % dst_rate == 0:
        k = src_rate // dst_rate
        whole = samples[: samples.size // k * k].astype(np.float64)
        out: NDArray[np.float64] = whole.reshape(-1, k).mean(axis=1)
    else:
        n_out = samples.size * dst_rate // src_rate
        positions = np.arange(n_out, dtype=np.float64) * (src_rate / dst_rate)
        out = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
    converted: NDArray[np.int16] = np.clip(np.round(out), -32768, 32767).astype(_SAMPLE)
    return converted


class StereoMixer:
    """Two mono streams → one interleaved stereo stream, aligned on timestamps.

    Args:
        sink: receives finished audio in order, in blocks of about ``chunk_ms``.
        sample_rate: the recording's rate; frames at another rate are resampled.
        window_ms: how far behind the newest frame a frame may still arrive and land.
        chunk_ms: audio written per sink call (bounds the number of writes).
        max_jump_ms: how far ahead of the newest audio a frame may be stamped.
        start_frame: sample frames the sink already holds (a recording continued after
            its first writer died): audio before it is final, the timeline goes on from it.
    """

    def __init__(
        self,
        sink: Sink,
        sample_rate: int,
        *,
        window_ms: int = 5000,
        chunk_ms: int = 1000,
        max_jump_ms: int = 300_000,
        start_frame: int = 0,
    ) -> None:
        if window_ms <= 0 or chunk_ms <= 0 or max_jump_ms <= 0:
            raise ValueError("window_ms, chunk_ms and max_jump_ms must be positive")
        self._sink = sink
        self.sample_rate = sample_rate
        self._window = window_ms * sample_rate // 1000
        self._cap = self._window + chunk_ms * sample_rate // 1000
        self._max_jump = max_jump_ms * sample_rate // 1000
        self._limit = start_frame + sink.room
        self._buf = np.zeros((self._cap, CHANNELS), dtype=_SAMPLE)
        self._bytes = self._buf.data.cast("B")
        self._committed = start_frame  # sample frames already handed to the sink: final
        self._head = start_frame  # end of the furthest frame placed so far
        self._start_frame = start_frame
        self._closed = False
        self._silenced: list[_Span] = []
        self.redacted = False
        """Whether any span of a channel was silenced."""

    @property
    def committed(self) -> int:
        """Sample frames written to the sink."""
        return self._committed

    @property
    def head(self) -> int:
        """End of the furthest frame placed, in sample frames from the start."""
        return self._head

    @property
    def buffered_bytes(self) -> int:
        """Memory the reorder window holds (constant for the recording's life)."""
        return self._buf.nbytes

    def add(self, channel: Channel, ts_ms: int, pcm: bytes, sample_rate: int) -> Placement:
        """Place one PCM16LE mono frame stamped ``ts_ms`` on ``channel``.

        Raises:
            RecordingClosedError: after :meth:`finish`.
        """
        if self._closed:
            raise RecordingClosedError("audio added to a finished recording")
        samples = resample(np.frombuffer(pcm, dtype=_SAMPLE), sample_rate, self.sample_rate)
        if samples.size == 0:
            return Placement.EMPTY
        start = ts_ms * self.sample_rate // 1000
        end = start + samples.size
        if end - self._head > self._max_jump or end > self._limit:
            return Placement.TOO_FAR
        if end <= self._committed:
            return Placement.LATE
        placement = Placement.PLACED
        if start < self._committed:
            samples = samples[self._committed - start :]
            start = self._committed
            placement = Placement.PARTLY_LATE
        # A frame may be longer than the window (the codec allows up to one second
        # at 48 kHz, six at 8 kHz): placing it piecewise keeps the buffer's size fixed.
        for offset in range(0, samples.size, self._window):
            self._place(channel, start + offset, samples[offset : offset + self._window])
        return placement

    def silence_from(self, channel: Channel, start: int) -> int:
        """Silence ``channel`` from sample frame ``start`` until :meth:`silence_until`.

        A span already open on the channel stays as it is (the same event again).

        Returns:
            Sample frames of the span this mixer had already written: too late to silence.
        """
        if any(span.channel is channel and span.end is None for span in self._silenced):
            return 0
        self._silenced.append(_Span(channel, max(start, 0)))
        self.redacted = True
        return max(0, self._committed - max(start, self._start_frame))

    def silence_until(self, channel: Channel, end: int) -> None:
        """End the channel's open span at sample frame ``end`` (nothing open: nothing to do)."""
        for span in self._silenced:
            if span.channel is channel and span.end is None:
                span.end = max(end, span.start)

    def finish(self, min_frames: int = 0) -> int:
        """Write everything still buffered and return the recording's length in sample frames.

        Args:
            min_frames: pad with silence to at least this length (the call's
                duration), bounded like a frame's jump and the sink's limit.
        """
        if not self._closed:
            pad_to = min(min_frames, self._head + self._max_jump, self._limit)
            self._commit_to(max(self._head, pad_to))
            self._closed = True
        return self._committed

    def _place(self, channel: Channel, start: int, samples: NDArray[np.int16]) -> None:
        """Write at most one window of samples starting at ``start >= committed``."""
        end = start + samples.size
        if end - self._committed > self._cap:
            self._commit_to(end - self._window)  # never past ``start``: samples fit a window
        self._buf[start - self._committed : end - self._committed, channel] = samples
        self._head = max(self._head, end)

    def _commit_to(self, target: int) -> None:
        """Hand ``[committed, target)`` to the sink: buffered audio, then silence."""
        n = target - self._committed
        if n <= 0:
            return
        frame = CHANNELS * _SAMPLE.itemsize
        kept = min(n, self._cap)
        self._apply_silence(self._committed + kept)
        self._sink.append(self._bytes[: kept * frame])
        if kept < self._cap:
            self._buf[: self._cap - kept] = self._buf[kept:]
            self._buf[self._cap - kept :] = 0
        else:
            self._buf[:] = 0
        silence = n - kept
        while silence > 0:  # a gap longer than the buffer: written from the zeroed buffer
            step = min(silence, self._cap)
            self._sink.append(self._bytes[: step * frame])
            silence -= step
        self._committed = target
        self._sink.fix_header()

    def _apply_silence(self, target: int) -> None:
        """Zero the silenced spans within ``[committed, target)`` of the buffer, and forget
        the spans that end before ``target`` (nothing of them is left to write)."""
        for span in self._silenced:
            lo = max(span.start, self._committed)
            hi = target if span.end is None else min(span.end, target)
            if lo < hi:
                self._buf[lo - self._committed : hi - self._committed, span.channel] = 0
        self._silenced = [s for s in self._silenced if s.end is None or s.end > target]


@dataclass(slots=True)
class _Span:
    """Sample frames ``[start, end)`` of one channel to write as silence (open: no end)."""

    channel: Channel
    start: int
    end: int | None = None
