"""A voicemail callee: an answering machine that plays a greeting, beeps, and records.

The stand-in carriers use it for numbers ending in ``0005`` (an answering machine)
unless a test gives its own callee. What the agent says after the beep is the
message left: :attr:`~voicebus.devkit.carriers.base.DialedCall.beep_end_ms` marks
the end of the beep on the call's timeline (the ``heard_spans`` of its result).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.caller.voices import default_voice
from voicebus.devkit.carriers.base import Callee, DialedCall

RATE: Final = 8000
GREETING: Final = (
    "Hi, you have reached the voicemail of Sam Lee, I can't take your call right now, "
    "so please leave your name and number after the tone."
)


def beep(hz: float = 1000.0, ms: int = 500, level: float = 9000.0) -> bytes:
    """A voicemail beep: a steady tone, PCM16LE 8 kHz, with 5 ms ramps."""
    n = RATE * ms // 1000
    wave = np.sin(2 * math.pi * hz * np.arange(n) / RATE) * level
    ramp = min(40, n // 2)
    wave[:ramp] *= np.linspace(0, 1, ramp)
    wave[n - ramp :] *= np.linspace(1, 0, ramp)
    return wave.astype("<i2").tobytes()


class Voicemail:
    """A callee that plays ``greeting``, a pause and a beep, then records until hung up.

    A real machine answers with its greeting at once: :meth:`warm` synthesizes it
    ahead of the first call (the stand-in carriers call it when they start).

    Args:
        greeting: spoken with the local TTS's voice.
        beep_hz: the beep's pitch.
        beep_ms: the beep's length.
        pause_ms: silence between the greeting and the beep.
        record_s: how long it records before hanging up itself.
    """

    def __init__(
        self,
        greeting: str = GREETING,
        *,
        beep_hz: float = 1000.0,
        beep_ms: int = 500,
        pause_ms: int = 400,
        record_s: float = 20.0,
    ) -> None:
        self.greeting = greeting
        self._tail = bytes(RATE * 2 * pause_ms // 1000) + beep(beep_hz, beep_ms)
        self._record_s = record_s
        self._audio: bytes | None = None

    async def warm(self) -> None:
        """Synthesize the greeting now (the first call would otherwise wait for it)."""
        if self._audio is None:
            voice = default_voice()
            self._audio = b"".join([c async for c in voice.synthesize(self.greeting, RATE)])

    async def __call__(self, call: DialedCall, caller: StreamCaller) -> None:
        """Greet, beep, record."""
        await self.warm()
        assert self._audio is not None
        await caller.say_pcm(self._audio + self._tail, text=self.greeting)
        call.beep_end_ms = caller.now_ms
        await caller.wait_closed(timeout=self._record_s)


def voicemail(greeting: str = GREETING, *, beep_hz: float = 1000.0, beep_ms: int = 500) -> Callee:
    """A :class:`Voicemail` callee."""
    return Voicemail(greeting, beep_hz=beep_hz, beep_ms=beep_ms)
