"""Telephony provider plug-ins: one folder each; importing this package registers them all."""

from voicebus.gateway.providers import twilio  # registers itself
from voicebus.gateway.providers.registry import get, providers, register

__all__ = ["get", "providers", "register", "twilio"]
