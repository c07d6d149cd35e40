"""Plivo: answer webhook (Plivo XML ``<Stream bidirectional>``) and Audio Streaming."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.plivo.stream import PlivoCodec
from voicebus.gateway.providers.plivo.webhook import PlivoWebhook
from voicebus.gateway.providers.registry import register

PROVIDER = register(Provider(name="plivo", webhook=PlivoWebhook, codec=PlivoCodec))
