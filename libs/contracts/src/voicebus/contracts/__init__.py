"""The public contract of the voicebus bus: events, commands, subjects, streams, audio frames.

Pure types and functions, no I/O. Every message body on the bus is a model
from here; every subject comes from :mod:`voicebus.contracts.subjects`.
"""

from voicebus.contracts.errors import ContractError, InvalidAudioFrameError, InvalidTokenError

__all__ = ["ContractError", "InvalidAudioFrameError", "InvalidTokenError"]
