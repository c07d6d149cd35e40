"""Twilio: voice webhooks (TwiML ``<Connect><Stream>``), bidirectional Media Streams, Calls API."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.registry import register
from voicebus.gateway.providers.twilio.outbound import (
    TwilioCallbacks,
    TwilioDialer,
    TwilioTransferMarkup,
    default_account,
)
from voicebus.gateway.providers.twilio.stream import TwilioCodec
from voicebus.gateway.providers.twilio.webhook import TwilioWebhook, tenant_webhook

PROVIDER = register(
    Provider(
        name="twilio",
        webhook=TwilioWebhook,
        codec=TwilioCodec,
        dialer=TwilioDialer,
        callbacks=TwilioCallbacks,
        default_account=default_account,
        tenant_webhook=tenant_webhook,
        transfer_markup=TwilioTransferMarkup,
    )
)
