"""What the simulated caller said and heard, tick by tick, and the latency of each turn.

Time is the media stream's clock: tick ``n`` covers ``[20 n, 20 n + 20)`` ms since
the stream started, the same clock as the ``media.timestamp`` the caller sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voicebus.devkit.caller.audio import (
    FRAME_MS,
    SAMPLE_RATE,
    interleave,
    samples_to_ms,
    write_wav,
)
from voicebus.devkit.caller.playout import Played


@dataclass
class Turn:
    """One caller line and how fast the agent answered it.

    Attributes:
        index: 0 for the first line of the call.
        text: what the line says, when known (synthesized lines).
        started_ms: when the line's first frame was sent.
        ended_ms: end of the caller's speech (its last audible sample), once sent.
        barge_in: the line started while agent audio was playing.
        first_agent_audio_ms: when the first audible agent audio received after the
            end of the caller's speech was played to the caller.
    """

    index: int
    text: str | None
    started_ms: float
    ended_ms: float | None = None
    barge_in: bool = False
    first_agent_audio_ms: float | None = None
    reply_from: int = 0
    """Playout position from which received audio counts as the agent's reply."""

    @property
    def latency_ms(self) -> float | None:
        """End of caller speech → first agent audio played to the caller."""
        if self.ended_ms is None or self.first_agent_audio_ms is None:
            return None
        return self.first_agent_audio_ms - self.ended_ms


@dataclass
class CallResult:
    """Everything a simulated call observed.

    ``heard_audio`` and ``said_audio`` are PCM16LE 8 kHz mono on the same timeline
    (silence where nothing was played or said), so sample ``i`` of both is the
    same instant; ``heard_spans`` lists, in ms, when agent audio was playing.
    """

    call_id: str | None
    call_sid: str
    stream_sid: str
    account_sid: str
    agent: str
    stream_parameters: dict[str, str]
    turns: list[Turn]
    heard_audio: bytes
    said_audio: bytes
    heard_spans: list[tuple[float, float]]
    clears_received: int
    marks_received: int
    marks_echoed: list[str]
    server_closed: bool
    protocol_errors: list[str]
    duration_ms: float
    sample_rate: int = SAMPLE_RATE

    @property
    def heard_ms(self) -> float:
        """How much agent audio was played to the caller."""
        return sum(end - start for start, end in self.heard_spans)

    def save_wav(self, path: Path) -> None:
        """Write a stereo WAV: the caller on the left, what it heard on the right."""
        write_wav(path, interleave(self.said_audio, self.heard_audio), self.sample_rate, 2)


@dataclass
class Timeline:
    """Accumulates each tick's audio and measures turn latencies."""

    said: bytearray = field(default_factory=bytearray)
    heard: bytearray = field(default_factory=bytearray)
    ticks: int = 0
    turns: list[Turn] = field(default_factory=list)
    heard_spans: list[tuple[float, float]] = field(default_factory=list)
    heard_samples: int = 0
    """Agent samples played so far."""

    @property
    def now_ms(self) -> float:
        """Start of the next tick."""
        return float(self.ticks * FRAME_MS)

    @property
    def last_heard_ms(self) -> float | None:
        """When agent audio last stopped playing (or now, if it is playing)."""
        return self.heard_spans[-1][1] if self.heard_spans else None

    @property
    def last_speech_end_ms(self) -> float:
        """End of the caller's latest finished line, or 0."""
        for turn in reversed(self.turns):
            if turn.ended_ms is not None:
                return turn.ended_ms
        return 0.0

    def begin_turn(self, text: str | None, *, barge_in: bool) -> Turn:
        """A caller line starts in the coming tick."""
        turn = Turn(index=len(self.turns), text=text, started_ms=self.now_ms, barge_in=barge_in)
        self.turns.append(turn)
        return turn

    def end_turn(self, turn: Turn, offset_samples: int, reply_from: int) -> None:
        """The caller's speech ends ``offset_samples`` into the coming tick.

        Args:
            turn: the line.
            offset_samples: position of the line's last audible sample in this tick's frame.
            reply_from: playout position from which received audio answers this line.
        """
        turn.ended_ms = self.now_ms + samples_to_ms(offset_samples)
        turn.reply_from = reply_from

    def tick(self, said: bytes, played: Played) -> list[Turn]:
        """Record one tick.

        Returns:
            Turns whose first agent audio was played in this tick.
        """
        start = self.now_ms
        self.said += said
        self.heard += played.pcm
        if played.audio_samples:
            end = start + samples_to_ms(played.audio_samples)
            self.heard_samples += played.audio_samples
            if self.heard_spans and self.heard_spans[-1][1] >= start:
                self.heard_spans[-1] = (self.heard_spans[-1][0], end)
            else:
                self.heard_spans.append((start, end))
        answered: list[Turn] = []
        for turn in self.turns:
            if turn.ended_ms is None or turn.first_agent_audio_ms is not None:
                continue
            offset = played.first_audible_at_or_after(turn.reply_from)
            if offset is not None:
                turn.first_agent_audio_ms = start + samples_to_ms(offset)
                answered.append(turn)
        self.ticks += 1
        return answered
