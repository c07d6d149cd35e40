"""A simulated Twilio caller: signed webhook, Media Streams WebSocket, real-time audio."""

from voicebus.devkit.caller.errors import CallClosedError, CallerError, CallRejectedError
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.caller.timeline import CallResult, Turn
from voicebus.devkit.caller.voices import ToneVoice, voice

__all__ = [
    "CallClosedError",
    "CallRejectedError",
    "CallResult",
    "CallerError",
    "ToneVoice",
    "Turn",
    "TwilioCaller",
    "voice",
]
