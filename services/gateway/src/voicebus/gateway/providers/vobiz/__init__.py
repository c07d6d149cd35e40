"""Vobiz: answer webhook (Vobiz XML ``<Stream bidirectional>``) and audio streams."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.registry import register
from voicebus.gateway.providers.vobiz.stream import VobizCodec
from voicebus.gateway.providers.vobiz.webhook import VobizWebhook

PROVIDER = register(Provider(name="vobiz", webhook=VobizWebhook, codec=VobizCodec))
