"""Answering-machine detection from the first seconds of an outbound call's audio.

Pure: the AMD processor feeds it the callee's frames (on the call's media
timeline, 0 = the answer), the VAD's speech starts and stops, and the
transcripts; it returns decisions.

Who answered is decided within ``decide_ms`` (3 s by default) of the answer:

- **beep**: a steady tone (one frequency between 300 and 2,500 Hz holding most
  of the frame's energy for ``beep_min_ms``) is a machine ready to record;
- **transcript**: a voicemail phrase ("leave a message", "after the tone") is
  a machine;
- **greeting**: a person says "Hello?" (under ``human_greeting_ms``) and waits
  (``after_greeting_ms`` of silence, longer than a recording's pause between
  sentences); a machine talks on (``machine_greeting_ms`` of greeting without
  such a wait);
- **cadence**: ``machine_segments`` separate phrases before that pause is a
  recording reading its message;
- at ``decide_ms`` without any of these: ongoing speech counts as a machine,
  a finished short greeting as a person, and silence as unknown.

After a machine, the detector keeps listening for the beep (up to
``beep_wait_ms``): its end is ``machine_end_beep``, the moment a voicemail can
be left. A greeting that ends without a beep (``end_silence_ms`` of silence)
gives ``machine_end_beep`` with method ``silence``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from voicebus.contracts.events import AmdMethod, AmdResult

_VOICEMAIL: Final = re.compile(
    r"leave (a|your|me a) (message|name)|after the (tone|beep)|record your message|"
    r"(not|un) ?available|can'?t (take|come to) (your call|the phone)|voice ?mail|mailbox|"
    r"reached the (voice|mail)|at the tone|you('ve| have) reached|get back to you",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Thresholds, in ms of the call's media timeline."""

    decide_ms: int = 2900
    human_greeting_ms: int = 1500
    after_greeting_ms: int = 1000
    machine_greeting_ms: int = 2000
    machine_segments: int = 3
    beep_min_ms: int = 160
    beep_wait_ms: int = 40_000
    end_silence_ms: int = 3500


@dataclass(frozen=True, slots=True)
class AmdDecision:
    """What the detector concluded, for ``amd.detected``."""

    result: AmdResult
    method: AmdMethod
    confidence: float
    at_ms: int


class BeepDetector:
    """Finds a steady tone in 20 ms PCM16 frames.

    Args:
        sample_rate: the call's rate.
        min_ms: how long the tone must hold.
    """

    def __init__(self, sample_rate: int, min_ms: int) -> None:
        self._rate = sample_rate
        self._min_ms = min_ms
        self._run_ms = 0.0
        self._freq: float | None = None
        self.heard = False  # a whole beep held for at least min_ms

    def frame(self, pcm: bytes) -> bool:
        """Feed one frame; True when a beep that held long enough has just ended."""
        samples = np.frombuffer(pcm, "<i2").astype(np.float32)
        ms = 1000 * len(samples) / self._rate
        freq = self._tone(samples)
        steady = freq is not None and (self._freq is None or abs(freq - self._freq) <= 60)
        if steady:
            self._freq = freq if self._freq is None else self._freq
            self._run_ms += ms
            if self._run_ms >= self._min_ms:
                self.heard = True
            return False
        ended = self._run_ms >= self._min_ms
        self._run_ms, self._freq = 0.0, None
        if freq is not None:  # another tone starts here
            self._freq, self._run_ms = freq, ms
        return ended

    def _tone(self, samples: np.typing.NDArray[np.float32]) -> float | None:
        if len(samples) < 64 or float(np.sqrt(np.mean(samples**2))) < 300:
            return None  # too short or too quiet
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
        total = float(spectrum[1:].sum())
        peak = int(np.argmax(spectrum[1:])) + 1
        share = float(spectrum[max(1, peak - 1) : peak + 2].sum()) / total if total else 0.0
        freq = peak * self._rate / len(samples)
        return freq if share >= 0.8 and 300 <= freq <= 2500 else None


class MachineDetector:
    """One call's detector (see the module docstring).

    Args:
        sample_rate: the call's rate.
        settings: thresholds.
    """

    def __init__(self, sample_rate: int, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        self._beep = BeepDetector(sample_rate, self.settings.beep_min_ms)
        self._now = 0
        self._speaking = False
        self._first_onset: int | None = None
        self._last_stop: int | None = None
        self._segments = 0
        self._greeting_ms = 0  # speech of the greeting so far
        self._segment_start = 0
        self.decision: AmdDecision | None = None
        self.finished = False  # nothing more will be decided

    # -- what the call does ----------------------------------------------------

    def audio(self, pcm: bytes, end_ms: int) -> list[AmdDecision]:
        """A frame of the callee ending at ``end_ms``; the decisions it completes."""
        self._now = end_ms
        if self.finished:
            return []
        if self._beep.frame(pcm):
            return self._beep_ended()
        return self._check()

    def speech_started(self, confirm_ms: int = 0) -> None:
        """The VAD heard speech start, confirmed after ``confirm_ms`` of speech."""
        self._speaking = True
        self._segment_start = max(0, self._now - confirm_ms)
        self._segments += 1
        if self._first_onset is None:
            self._first_onset = self._segment_start

    def speech_stopped(self, stop_ms: int) -> None:
        """The VAD heard speech stop, after ``stop_ms`` of silence."""
        self._speaking = False
        end = max(self._segment_start, self._now - stop_ms)
        self._greeting_ms += end - self._segment_start
        self._last_stop = end

    def transcript(self, text: str) -> list[AmdDecision]:
        """A transcript of the callee; voicemail words decide a machine."""
        if self.decision is None and _VOICEMAIL.search(text):
            return self._decide(AmdResult.MACHINE, AmdMethod.TRANSCRIPT, 0.9)
        return []

    # -- deciding ----------------------------------------------------------------

    def _check(self) -> list[AmdDecision]:
        s, now = self.settings, self._now
        if self.decision is not None:
            return self._after_machine()
        if self._beep.heard:
            return []  # a beep is playing: decided when it ends
        greeting = self._greeting_ms + (now - self._segment_start if self._speaking else 0)
        paused = self._last_stop is not None and not self._speaking and now - self._last_stop
        if paused and paused >= s.after_greeting_ms and self._greeting_ms <= s.human_greeting_ms:
            return self._decide(AmdResult.HUMAN, AmdMethod.GREETING, 0.8)
        if greeting >= s.machine_greeting_ms:
            return self._decide(AmdResult.MACHINE, AmdMethod.GREETING, 0.8)
        if self._segments >= s.machine_segments:
            return self._decide(AmdResult.MACHINE, AmdMethod.CADENCE, 0.7)
        if now < s.decide_ms:
            return []
        if self._first_onset is None:
            return self._decide(AmdResult.UNKNOWN, AmdMethod.SILENCE, 0.5)
        if self._speaking or greeting > s.human_greeting_ms:
            return self._decide(AmdResult.MACHINE, AmdMethod.GREETING, 0.6)
        return self._decide(AmdResult.HUMAN, AmdMethod.GREETING, 0.6)

    def _after_machine(self) -> list[AmdDecision]:
        s, now = self.settings, self._now
        if now >= s.beep_wait_ms:
            self.finished = True
            return []
        quiet = self._last_stop is not None and not self._speaking and not self._beep.heard
        if quiet and self._last_stop is not None and now - self._last_stop >= s.end_silence_ms:
            self.finished = True
            return [AmdDecision(AmdResult.MACHINE_END_BEEP, AmdMethod.SILENCE, 0.5, now)]
        return []

    def _beep_ended(self) -> list[AmdDecision]:
        self.finished = True
        out = []
        if self.decision is None:
            out += self._decide(AmdResult.MACHINE, AmdMethod.BEEP, 0.9)
        out.append(AmdDecision(AmdResult.MACHINE_END_BEEP, AmdMethod.BEEP, 0.95, self._now))
        return out

    def _decide(self, result: AmdResult, method: AmdMethod, confidence: float) -> list[AmdDecision]:
        self.decision = AmdDecision(result, method, confidence, self._now)
        if result is not AmdResult.MACHINE:
            self.finished = True
        return [self.decision]
