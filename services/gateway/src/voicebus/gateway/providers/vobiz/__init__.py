"""Vobiz: answer webhook (Vobiz XML ``<Stream bidirectional>``), audio streams, Call API."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.registry import register
from voicebus.gateway.providers.vobiz.outbound import VobizCallbacks, VobizDialer, default_account
from voicebus.gateway.providers.vobiz.stream import VobizCodec
from voicebus.gateway.providers.vobiz.transfer import VobizTransferMarkup
from voicebus.gateway.providers.vobiz.webhook import VobizWebhook, tenant_webhook

PROVIDER = register(
    Provider(
        name="vobiz",
        webhook=VobizWebhook,
        codec=VobizCodec,
        dialer=VobizDialer,
        callbacks=VobizCallbacks,
        default_account=default_account,
        transfer_markup=VobizTransferMarkup,
        tenant_webhook=tenant_webhook,
    )
)
