"""The false-interruption guard: whether caller speech over the agent cuts it.

Pure: the output processor tells it what happens and acts on its verdicts.

Caller speech over interruptible agent speech first only **pauses** the agent
(its audio is held in media; what the provider already has, at most the
pacing lead, plays out). Then:

- an interim transcript with ``min_words`` words that are not backchannels
  cuts the agent at once;
- otherwise each caller turn of the held stretch is judged on its final
  transcript: ``min_words`` such words, or one such word and at least
  ``min_speech_ms`` of speech, cut the agent; nothing (a cough, a noise),
  backchannels ("mhm", "okay") or too little resume it where it stopped, and
  that text is marked as a backchannel (no turn of the conversation);
- a turn whose transcript never comes (the STT failed) resumes the agent
  ``hold_timeout_s`` after it ended, so a broken engine never silences it.

The agent resumes only once the caller is silent and every turn of the held
stretch is judged. An empty interrupting turn therefore never loses the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voicebus.media.backchannels import Backchannels


class Verdict(Enum):
    """What the output does with the agent's speech."""

    NONE = "none"
    PAUSE = "pause"
    RESUME = "resume"
    INTERRUPT = "interrupt"


@dataclass(slots=True)
class Floor:
    """Shared by a call's processors: whether the agent is held for the caller, and
    whether answering-machine detection still waits for a decision.

    In both cases the turn processor ends turns on the VAD stop, without asking
    the smart-turn model: each is judged as soon as its transcript exists.
    """

    holding: bool = False
    screening: bool = False

    @property
    def quick_turns(self) -> bool:
        """Turns end on the VAD stop."""
        return self.holding or self.screening


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The agent's interruption settings (``TurnSettings``) plus media's timeout."""

    min_words: int = 1
    min_speech_ms: int = 500
    hold_timeout_s: float = 3.0


@dataclass(frozen=True, slots=True)
class Judgement:
    """A final transcript judged: the verdict, and whether the text is a backchannel."""

    verdict: Verdict
    backchannel: bool


class InterruptionGuard:
    """One call's guard.

    Args:
        settings: thresholds.
        backchannels: phrases that never interrupt.
        floor: the call's shared floor state (this guard sets ``holding``).
    """

    def __init__(self, settings: GuardSettings, backchannels: Backchannels, floor: Floor) -> None:
        self._settings = settings
        self._backchannels = backchannels
        self.floor = floor
        self._speaking = False
        self._pending = 0  # turns of the held stretch ended and not judged yet
        self._deadline: float | None = None

    @property
    def holding(self) -> bool:
        """The agent is paused for the caller."""
        return self.floor.holding

    def speech_started(self, *, agent_interruptible: bool) -> Verdict:
        """The caller started speaking; ``agent_interruptible``: agent speech that may be cut."""
        self._speaking = True
        if self.floor.holding:
            return Verdict.NONE
        if not agent_interruptible:
            return Verdict.NONE
        self.floor.holding = True
        self._pending = 0
        self._deadline = None
        return Verdict.PAUSE

    def turn_ended(self, now: float) -> None:
        """A caller turn ended; its transcript is awaited (only while holding)."""
        self._speaking = False
        if self.floor.holding:
            self._pending += 1
            self._deadline = now + self._settings.hold_timeout_s

    def interim(self, text: str) -> Verdict:
        """An interim transcript of the turn in progress."""
        if not self.floor.holding:
            return Verdict.NONE
        if len(self._backchannels.content_words(text)) >= self._settings.min_words:
            return self._release(Verdict.INTERRUPT)
        return Verdict.NONE

    def transcript(self, text: str, speech_ms: int) -> Judgement:
        """A final transcript (empty: nothing was understood) of a turn of ``speech_ms``."""
        if not self.floor.holding:
            return Judgement(Verdict.NONE, backchannel=False)
        self._pending = max(0, self._pending - 1)
        words = len(self._backchannels.content_words(text))
        enough = words >= self._settings.min_words or (
            words >= 1 and speech_ms >= self._settings.min_speech_ms
        )
        if enough:
            return Judgement(self._release(Verdict.INTERRUPT), backchannel=False)
        return Judgement(self._maybe_resume(), backchannel=bool(text.strip()))

    def expired(self, now: float) -> Verdict:
        """Turns whose transcript never came count as empty once the hold timed out."""
        if not self.floor.holding or self._deadline is None or now < self._deadline:
            return Verdict.NONE
        self._pending = 0
        return self._maybe_resume()

    def deadline(self) -> float | None:
        """When :meth:`expired` may next resume the agent, if it may."""
        return self._deadline if self.floor.holding and self._pending else None

    def _maybe_resume(self) -> Verdict:
        if self._speaking or self._pending:
            return Verdict.NONE
        return self._release(Verdict.RESUME)

    def _release(self, verdict: Verdict) -> Verdict:
        self.floor.holding = False
        self._pending = 0
        self._deadline = None
        return verdict
