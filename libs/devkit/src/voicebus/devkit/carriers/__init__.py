"""Stand-in carriers: each provider's REST API and simulated callees, on loopback."""

from voicebus.devkit.carriers.base import (
    Behaviour,
    Callee,
    DialedCall,
    Progress,
    StandInCarrier,
    behaviour_for,
    wait_for_hangup,
)
from voicebus.devkit.carriers.voicemail import Voicemail, beep, voicemail

__all__ = [
    "Behaviour",
    "Callee",
    "DialedCall",
    "Progress",
    "StandInCarrier",
    "Voicemail",
    "beep",
    "behaviour_for",
    "voicemail",
    "wait_for_hangup",
]
