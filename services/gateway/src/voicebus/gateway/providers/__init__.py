"""Telephony provider plug-ins: one folder each; importing this package registers them all."""

from voicebus.gateway.providers import exotel, plivo, twilio, vobiz  # each registers itself
from voicebus.gateway.providers.registry import get, providers, register

__all__ = ["exotel", "get", "plivo", "providers", "register", "twilio", "vobiz"]
