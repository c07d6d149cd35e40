"""Twilio: inbound voice webhook (TwiML ``<Connect><Stream>``) and bidirectional Media Streams."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.registry import register
from voicebus.gateway.providers.twilio.stream import TwilioCodec
from voicebus.gateway.providers.twilio.webhook import TwilioWebhook

PROVIDER = register(Provider(name="twilio", webhook=TwilioWebhook, codec=TwilioCodec))
