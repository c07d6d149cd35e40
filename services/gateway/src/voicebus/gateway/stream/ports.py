"""The small protocols the parts of a live media call talk through (each has a fake in tests).

The hot path is synchronous: a WebSocket frame is parsed and its audio queued
for NATS inside the socket's callback, and agent audio is written to the socket
inside the bus subscription's callback, without awaiting anything.
"""

from __future__ import annotations

from typing import Protocol

from voicebus.contracts.events import EndReason, Envelope


class CallerSocket(Protocol):
    """The caller's side: a media WebSocket the bus→caller part writes to."""

    @property
    def closing(self) -> bool:
        """True once the socket is closing or closed: nothing more is sent."""
        ...

    def send(self, message: bytes, *, binary: bool = False) -> bool:
        """Queue one message (text unless ``binary``); False when the socket is gone."""
        ...


class FrameSink(Protocol):
    """High-rate NATS messages with prebuilt headers (``runtime.frames.FramePublisher``)."""

    def publish(self, subject: bytes, headers: bytes, payload: bytes) -> bool:
        """Queue one message; False when it was dropped (NATS unreachable, buffer full)."""
        ...


class EventSink(Protocol):
    """Stores call events in ``VB_EVENTS`` (the gateway's publish, awaiting the ack)."""

    async def publish(self, event: Envelope) -> None:
        """Store ``event``."""
        ...


class CallEnder(Protocol):
    """Ends the call from the platform's side (hang-up, transfer done, lease lost)."""

    def end(self, reason: EndReason, code: int = 1000) -> None:
        """Close the caller's socket; the call ends with ``reason``."""
        ...


class Playback(Protocol):
    """What call control needs of the bus→caller part."""

    @property
    def all_played(self) -> bool:
        """Every mark sent has been echoed (or dropped by a clear)."""
        ...

    @property
    def last_audio_at(self) -> float:
        """Monotonic time of the last agent frame received (0 if none)."""
        ...

    def flush_mark(self) -> bool:
        """Send a mark for the audio sent since the last one; True if one was sent."""
        ...

    def send_audio(self, pcm: bytes) -> bool:
        """Play ``pcm`` (PCM16LE at the call's rate) to the caller now; False if gone."""
        ...

    def clear(self, utterance_id: str | None) -> None:
        """Drop agent audio not yet played (the caller barged in)."""
        ...
