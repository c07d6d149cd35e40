"""Server-side turn latency: the caller's end of speech to the reply's first audio sent (pure).

A turn arms the clock with the moment the caller's speech ended (the VAD's estimate,
before the end-of-turn wait); the first agent utterance that starts sending audio
after that stops it, once. A turn that gets no reply (a backchannel, no words) is
disarmed, and a wait over ``max_s`` (the agent spoke on its own much later) is not a
turn latency: both are dropped rather than counted.
"""

from __future__ import annotations

from typing import Final

MAX_TURN_LATENCY_S: Final = 30.0


class TurnClock:
    """One call's pending turn, if any.

    Args:
        max_s: longer waits are not measured.
    """

    def __init__(self, max_s: float = MAX_TURN_LATENCY_S) -> None:
        self._max_s = max_s
        self._speech_ended_at: float | None = None

    @property
    def armed(self) -> bool:
        """A caller turn waits for the agent's reply."""
        return self._speech_ended_at is not None

    def turn_ended(self, speech_ended_at: float) -> None:
        """The caller's turn ended; their speech stopped at ``speech_ended_at`` (monotonic)."""
        self._speech_ended_at = speech_ended_at

    def no_reply(self) -> None:
        """The turn asks for no reply (a backchannel, or no words): stop waiting."""
        self._speech_ended_at = None

    def agent_audio_started(self, now: float) -> float | None:
        """An agent utterance started sending audio at ``now``; the turn latency, once."""
        ended, self._speech_ended_at = self._speech_ended_at, None
        if ended is None:
            return None
        latency = now - ended
        return latency if 0.0 <= latency <= self._max_s else None
