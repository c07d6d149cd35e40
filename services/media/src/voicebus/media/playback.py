"""The agent's side of a call: utterances from synthesis to confirmed playback.

Pure: the output processor feeds it synthesized audio, playback marks and the
clock, and acts on what it returns (frames to send, utterances started,
finished or interrupted). Utterances play one after another in the order
their first chunk arrived.

The silence a TTS voice puts before an utterance's first word (~250-320 ms for
the local voice) is cut down to ``lead_in_ms``: the caller waits for no
silence between the end of their turn and the agent's voice. Pauses later in
the utterance are the voice's own and stay.

An utterance is *live* from its first chunk until a playback mark confirms its
last frame played (finished), the caller cuts it (interrupted), or its audio
should long have played with no mark to say so (finished after
``mark_grace_ms``, for providers or tests without marks).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from voicebus.contracts.audio import PlaybackMark
from voicebus.media.heard import SpokenChunk, join_texts, text_heard, text_planned
from voicebus.media.pacing import FrameSlicer, MediaClock, Pacer, audio_ms

SILENT_LEVEL: Final = 100
"""PCM16 amplitude under which a sample counts as silence (≈ -50 dBFS)."""


@dataclass(frozen=True, slots=True)
class OutFrame:
    """A frame to publish on ``audio.out`` now.

    Attributes:
        pcm: one frame of PCM16 audio.
        seq: the call's outgoing frame number.
        ts_ms: when it plays, on the call's media timeline.
        utterance_id: the utterance it belongs to.
        last: the utterance's last frame.
        first: the utterance's first frame (agent speech starts).
    """

    pcm: bytes
    seq: int
    ts_ms: int
    utterance_id: str
    last: bool
    first: bool


@dataclass(frozen=True, slots=True)
class Started:
    """An utterance's first frame left: ``agent.speech.started``."""

    utterance_id: str
    text: str
    first_audio_ms: float | None


@dataclass(frozen=True, slots=True)
class Finished:
    """An utterance played in full: ``agent.speech.stopped``.

    Attributes:
        confirmed: a playback mark confirmed it (False: assumed after the grace period).
    """

    utterance_id: str
    text: str
    played_ms: int
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Interrupted:
    """An utterance cut by the caller: ``agent.speech.interrupted``.

    Attributes:
        sent_audio: some of its audio had been sent (the provider must flush it).
    """

    utterance_id: str
    text_planned: str
    text_heard: str
    played_ms: int
    sent_audio: bool


@dataclass(slots=True)
class _Chunk:
    text: str
    audio_bytes: int = 0
    word_ends_ms: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _Utterance:
    utterance_id: str
    allow_interruptions: bool
    slicer: FrameSlicer
    chunks: list[_Chunk] = field(default_factory=list)
    frames: deque[bytes] = field(default_factory=deque)
    first_text_at: float | None = None
    first_audio_at: float | None = None
    produced_all: bool = False
    sent_frames: int = 0
    last_seq: int | None = None
    play_end: float | None = None
    played_ms: int = 0
    leading: bytes | None = b""  # silence held before the first sound; None once it sounded
    trimmed: int = 0  # bytes of leading silence dropped

    @property
    def produced_bytes(self) -> int:
        return sum(chunk.audio_bytes for chunk in self.chunks)

    @property
    def all_sent(self) -> bool:
        return self.last_seq is not None


class Playout:
    """Utterances of one call, their frames, pacing, marks and barge-in.

    Args:
        sample_rate: the call's audio rate.
        clock: the call's media clock (timestamps of outgoing frames).
        frame_ms: frame duration.
        lead_ms: how far ahead of real time frames may be sent.
        mark_grace_ms: an utterance with no mark for its last frame this long after
            it should have played counts as played.
        lead_in_ms: silence kept before an utterance's first sound; None keeps the
            voice's own.
        max_trim_ms: at most this much leading silence is dropped (an utterance that is
            all silence still plays, less this).
    """

    def __init__(
        self,
        sample_rate: int,
        clock: MediaClock,
        *,
        frame_ms: int = 20,
        lead_ms: int = 160,
        mark_grace_ms: int = 1000,
        lead_in_ms: int | None = 20,
        max_trim_ms: int = 600,
    ) -> None:
        self.sample_rate = sample_rate
        self._lead_in_bytes = None if lead_in_ms is None else sample_rate * lead_in_ms // 1000 * 2
        self._max_trim_bytes = sample_rate * max_trim_ms // 1000 * 2
        self.frame_ms = frame_ms
        self._frame_bytes = sample_rate * frame_ms // 1000 * 2
        self._clock = clock
        self._pacer = Pacer(frame_ms, lead_ms)
        self._grace_s = mark_grace_ms / 1000
        self._live: OrderedDict[str, _Utterance] = OrderedDict()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._next_seq = 0
        self._last_ts: int | None = None
        self._paused = False

    # -- what synthesis produces ---------------------------------------------

    def chunk(
        self, utterance_id: str, text: str, *, allow_interruptions: bool, received_at: float
    ) -> None:
        """A chunk of an utterance is about to be synthesized."""
        if utterance_id in self._ended:
            return
        utterance = self._live.get(utterance_id)
        if utterance is None:
            utterance = _Utterance(
                utterance_id, allow_interruptions, FrameSlicer(self._frame_bytes)
            )
            self._live[utterance_id] = utterance
        if utterance.first_text_at is None:
            utterance.first_text_at = received_at
        utterance.chunks.append(_Chunk(text))

    def audio(
        self, utterance_id: str, pcm: bytes, now: float, word_ends_ms: Sequence[float] = ()
    ) -> None:
        """Synthesized audio for the utterance's latest chunk (and its words' end times)."""
        utterance = self._live.get(utterance_id)
        if utterance is None or utterance.produced_all or not utterance.chunks or not pcm:
            return
        if utterance.leading is not None and self._lead_in_bytes is not None:
            pcm = self._trim_leading(utterance, pcm, self._lead_in_bytes, self._max_trim_bytes)
            if not pcm:
                return
        if utterance.first_audio_at is None:
            utterance.first_audio_at = now
        utterance.chunks[-1].audio_bytes += len(pcm)
        utterance.chunks[-1].word_ends_ms.extend(word_ends_ms)
        utterance.frames.extend(utterance.slicer.push(pcm))

    def done(self, utterance_id: str) -> None:
        """The utterance's final chunk is synthesized: no more audio will come."""
        utterance = self._live.get(utterance_id)
        if utterance is None or utterance.produced_all:
            return
        utterance.produced_all = True
        if utterance.produced_bytes == 0:
            self._end(utterance_id)  # nothing was ever audible: no speech events
            return
        tail = utterance.slicer.flush()
        if tail is not None:
            utterance.frames.append(tail)
        elif not utterance.frames:
            utterance.frames.append(bytes(self._frame_bytes))  # carries the last-frame flag

    # -- sending -------------------------------------------------------------

    def due(self, now: float) -> tuple[list[OutFrame], list[Started]]:
        """Frames to send now, and the utterances whose first frame is among them."""
        frames: list[OutFrame] = []
        started: list[Started] = []
        while not self._paused and (utterance := self._sending()) is not None and utterance.frames:
            if self._pacer.wait_s(now) > 0:
                break
            pcm = utterance.frames.popleft()
            plays_at = self._pacer.sent(now)
            last = utterance.produced_all and not utterance.frames
            first = utterance.sent_frames == 0
            frame = OutFrame(
                pcm, self._next_seq, self._ts(plays_at), utterance.utterance_id, last, first
            )
            self._next_seq += 1
            utterance.sent_frames += 1
            if first:
                started.append(
                    Started(
                        utterance.utterance_id,
                        self._text(utterance),
                        _elapsed_ms(utterance.first_text_at, utterance.first_audio_at),
                    )
                )
            if last:
                utterance.last_seq = frame.seq
                utterance.play_end = plays_at + self._pacer.frame_s
            frames.append(frame)
        return frames, started

    def wait_s(self, now: float) -> float | None:
        """Seconds until :meth:`due` or :meth:`expire` has work; None when nothing is pending."""
        waits: list[float] = []
        utterance = self._sending()
        if utterance is not None and utterance.frames and not self._paused:
            waits.append(self._pacer.wait_s(now))
        for live in self._live.values():
            if live.play_end is not None:
                waits.append(max(0.0, live.play_end + self._grace_s - now))
        return min(waits) if waits else None

    # -- what the provider and the caller do ---------------------------------

    def mark(self, mark: PlaybackMark) -> Finished | None:
        """A playback mark arrived; the utterance it completes, if it completes one."""
        utterance = self._live.get(mark.utterance_id)
        if utterance is None:
            return None
        utterance.played_ms = max(utterance.played_ms, mark.played_ms)
        if utterance.last_seq is None or mark.seq < utterance.last_seq:
            return None
        self._end(utterance.utterance_id)
        return Finished(utterance.utterance_id, self._text(utterance), utterance.played_ms, True)

    def expire(self, now: float) -> list[Finished]:
        """Utterances whose audio should have played ``mark_grace_ms`` ago with no mark."""
        finished = []
        for utterance in list(self._live.values()):
            if utterance.play_end is not None and now >= utterance.play_end + self._grace_s:
                self._end(utterance.utterance_id)
                sent = utterance.sent_frames * self._frame_bytes
                played = round(audio_ms(sent, self.sample_rate))
                text = self._text(utterance)
                finished.append(Finished(utterance.utterance_id, text, played, confirmed=False))
        return finished

    def is_live(self, utterance_id: str) -> bool:
        """Whether the utterance is still being produced, sent or played."""
        return utterance_id in self._live

    @property
    def speaking(self) -> bool:
        """Agent audio is being produced, sent or played (not yet confirmed played)."""
        return bool(self._live)

    @property
    def interruptible(self) -> bool:
        """The agent has more to say (audio not sent yet, or still being synthesized) and
        the utterance playing may be cut.

        When everything was sent, the caller hears at most the pacing lead more: speech
        then is the caller's turn, not something said over the agent.
        """
        head = next(iter(self._live.values()), None)
        sending = self._sending()
        return head is not None and head.allow_interruptions and sending is not None

    @property
    def paused(self) -> bool:
        """Sending is paused (:meth:`pause`)."""
        return self._paused

    def pause(self) -> None:
        """Hold the agent's audio: no frame is sent until :meth:`resume`.

        What was already sent (at most ``lead_ms``) plays out at the provider;
        nothing is dropped, so resuming goes on from the next frame, mid-word if
        need be, never from the start of the sentence.
        """
        self._paused = True

    def resume(self) -> None:
        """Send the held audio again, from where it stopped."""
        self._paused = False

    def interrupt(self, now: float) -> list[Interrupted]:
        """The caller started speaking: cut every live utterance, if the one playing allows it.

        Returns:
            The utterances cut, oldest first; empty when the agent is silent or the
            utterance playing may not be interrupted.
        """
        head = next(iter(self._live.values()), None)
        if head is None or not head.allow_interruptions:
            return []
        cut = []
        for utterance in list(self._live.values()):
            if not utterance.allow_interruptions:
                continue
            self._end(utterance.utterance_id)
            chunks = [
                SpokenChunk(
                    c.text, audio_ms(c.audio_bytes, self.sample_rate), tuple(c.word_ends_ms)
                )
                for c in utterance.chunks
            ]
            cut.append(
                Interrupted(
                    utterance.utterance_id,
                    text_planned(chunks),
                    text_heard(chunks, utterance.played_ms),
                    utterance.played_ms,
                    utterance.sent_frames > 0,
                )
            )
        if any(c.sent_audio for c in cut):
            self._pacer.clear(now)
        self._paused = False
        return cut

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _trim_leading(utterance: _Utterance, pcm: bytes, keep: int, cap: int) -> bytes:
        """``pcm`` from ``keep`` bytes before its first sound; silence until then is held.

        At most ``cap`` bytes are ever dropped: past that, audio flows as it is.
        """
        held = utterance.leading or b""
        joined = held + pcm
        usable = len(pcm) - len(pcm) % 2
        loud = np.flatnonzero(np.abs(np.frombuffer(pcm[:usable], "<i2")) > SILENT_LEVEL)
        first = len(held) + int(loud[0]) * 2 if loud.size else len(joined)
        drop = min(max(0, first - keep), cap - utterance.trimmed)
        drop -= drop % 2
        if loud.size == 0 and utterance.trimmed + drop < cap:
            utterance.trimmed += drop  # still silence: hold the lead-in, drop the rest
            utterance.leading = joined[drop:]
            return b""
        utterance.leading = None
        utterance.trimmed += drop
        return joined[drop:]

    def _sending(self) -> _Utterance | None:
        """The utterance whose frames go out next (the oldest not fully sent)."""
        for utterance in self._live.values():
            if not utterance.all_sent:
                return utterance
        return None

    def _ts(self, plays_at: float) -> int:
        ts = self._clock.media_ms(plays_at)
        if self._last_ts is not None:
            ts = max(ts, self._last_ts + self.frame_ms)
        self._last_ts = ts
        return ts

    def _text(self, utterance: _Utterance) -> str:
        return join_texts([chunk.text for chunk in utterance.chunks])

    def _end(self, utterance_id: str, remember: int = 256) -> None:
        self._live.pop(utterance_id, None)
        self._ended[utterance_id] = None
        while len(self._ended) > remember:
            self._ended.popitem(last=False)


def _elapsed_ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1000)
