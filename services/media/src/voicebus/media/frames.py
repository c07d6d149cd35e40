"""pipecat frames of the media pipeline that pipecat itself has no frame for.

All are system frames: the pipeline's processors run in direct mode and never
broadcast pipecat interruptions, so none of these may be dropped by one.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.context import Context
from pipecat.frames.frames import InputAudioRawFrame, SystemFrame

from voicebus.contracts.audio import PlaybackMark
from voicebus.contracts.commands import SayData
from voicebus.contracts.events import ErrorCode
from voicebus.engines.streaming import WordTiming


@dataclass
class CallerAudioFrame(InputAudioRawFrame):
    """A caller frame from ``audio.in``, with its media timestamp.

    ``__str__`` is the frame's name only: pipecat formats every frame it pushes
    for a trace log, and the full audio-frame text costs more than the VAD's
    bookkeeping at 50 frames/s per call.
    """

    ts_ms: int = 0

    def __str__(self) -> str:
        return self.name


@dataclass
class SayFrame(SystemFrame):
    """A ``ctl.say`` chunk from the bus, on its way to synthesis."""

    say: SayData
    received_at: float
    trace: Context | None = None
    """The trace context of the ``ctl.say`` message (None: not traced)."""


@dataclass
class PlaybackMarkFrame(SystemFrame):
    """A playback mark from the bus (``audio.played``)."""

    mark: PlaybackMark


@dataclass
class UserSpeechStartedFrame(SystemFrame):
    """The caller started speaking (VAD), possibly resuming a turn still open.

    Attributes:
        at_ms: estimated speech onset on the call's media timeline.
        new_turn: a new caller turn begins (``speech.user.started``); False when
            the caller resumes a turn that smart turn detection kept open.
    """

    at_ms: int
    new_turn: bool


@dataclass
class UserTurnAudioFrame(SystemFrame):
    """Caller audio of the open turn, as it arrives (streaming STT listens to it).

    ``__str__`` is the frame's name only, like :class:`CallerAudioFrame`.
    """

    audio: bytes

    def __str__(self) -> str:
        return self.name


@dataclass
class TranscriptInterimFrame(SystemFrame):
    """What the caller seems to be saying so far: ``transcript.partial``, and what the
    barge-in guard counts words of while the agent speaks."""

    utterance_id: str
    text: str


@dataclass
class UserTurnEndedFrame(SystemFrame):
    """The caller's turn ended: its audio, ready for speech to text."""

    audio: bytes
    sample_rate: int
    start_ms: int
    end_ms: int
    ended_at: float
    speech_ended_at: float | None = None
    """When the caller's speech ended (monotonic; before the end-of-turn wait)."""
    trace: Context | None = None
    """The context of the turn's span; its speech to text ends it."""


@dataclass
class TranscriptFrame(SystemFrame):
    """What the caller said in one turn (empty text: the turn held no words).

    Attributes:
        backchannel: set by the output's interruption guard: said over the agent
            without taking the turn.
    """

    utterance_id: str
    text: str
    language: str | None
    confidence: float | None
    start_ms: int
    end_ms: int
    latency_ms: float
    engine: str
    backchannel: bool = False
    trace: Context | None = None
    """The context of the turn's span: the transcript is published within it."""


@dataclass
class AgentChunkFrame(SystemFrame):
    """A chunk of an agent utterance is being synthesized; its audio follows."""

    utterance_id: str
    seq: int
    text: str
    allow_interruptions: bool
    received_at: float


@dataclass
class AgentAudioFrame(SystemFrame):
    """Synthesized audio (PCM16 at the call's rate) of the latest chunk of an utterance.

    ``words`` are the words this audio starts, timed from the start of the chunk's
    audio, when the engine gives timings.
    """

    utterance_id: str
    pcm: bytes
    words: tuple[WordTiming, ...] = ()


@dataclass
class AgentUtteranceDoneFrame(SystemFrame):
    """Every chunk of the utterance is synthesized."""

    utterance_id: str


@dataclass
class CancelUtterancesFrame(SystemFrame):
    """Upstream: stop synthesizing these utterances (the caller cut them)."""

    utterance_ids: tuple[str, ...]


@dataclass
class MediaErrorFrame(SystemFrame):
    """Something failed for the call; becomes a ``call.error`` event."""

    code: ErrorCode
    message: str
    retryable: bool
