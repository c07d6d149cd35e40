"""Vobiz audio streams: Plivo's protocol, except that no ``stop`` event is ever sent.

In: ``start``, ``media``, ``dtmf``, ``playedStream`` (checkpoint echo) and
``clearedAudio``; the end of the stream is the WebSocket closing. Out:
``playAudio``, ``checkpoint``, ``clearAudio``. A ``stop`` from Vobiz would be
out of protocol, so it is counted as an unknown event rather than ending the call.
"""

from __future__ import annotations

from typing import Final

from voicebus.gateway.providers.plivo.stream import PlivoStyleCodec

VOBIZ_EVENTS: Final = frozenset({"start", "media", "dtmf", "playedStream", "clearedAudio"})


class VobizCodec(PlivoStyleCodec):
    """Vobiz's stream protocol for one WebSocket."""

    def __init__(self) -> None:
        super().__init__(VOBIZ_EVENTS)
