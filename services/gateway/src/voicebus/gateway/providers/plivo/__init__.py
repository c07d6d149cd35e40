"""Plivo: answer webhook (Plivo XML ``<Stream bidirectional>``), Audio Streaming, Call API."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.plivo.outbound import PlivoCallbacks, PlivoDialer, default_account
from voicebus.gateway.providers.plivo.stream import PlivoCodec
from voicebus.gateway.providers.plivo.transfer import PlivoTransferMarkup
from voicebus.gateway.providers.plivo.webhook import PlivoWebhook, tenant_webhook
from voicebus.gateway.providers.registry import register

PROVIDER = register(
    Provider(
        name="plivo",
        webhook=PlivoWebhook,
        codec=PlivoCodec,
        dialer=PlivoDialer,
        callbacks=PlivoCallbacks,
        default_account=default_account,
        transfer_markup=PlivoTransferMarkup,
        tenant_webhook=tenant_webhook,
    )
)
