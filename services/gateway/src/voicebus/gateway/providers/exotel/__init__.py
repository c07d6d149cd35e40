"""Exotel: Voicebot applet (dynamic stream URL, Basic auth), AgentStream codec, Connect Voice AI."""

from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.exotel.outbound import ExotelCallbacks, ExotelDialer
from voicebus.gateway.providers.exotel.settings import default_account, stream_auth
from voicebus.gateway.providers.exotel.stream import MIN_OUT_BYTES, ExotelCodec
from voicebus.gateway.providers.exotel.webhook import ExotelWebhook, tenant_webhook
from voicebus.gateway.providers.registry import register

PROVIDER = register(
    Provider(
        name="exotel",
        webhook=ExotelWebhook,
        codec=ExotelCodec,
        dialer=ExotelDialer,
        callbacks=ExotelCallbacks,
        default_account=default_account,
        stream_auth=stream_auth,
        out_chunk_bytes=MIN_OUT_BYTES,
        tenant_webhook=tenant_webhook,
    )
)
