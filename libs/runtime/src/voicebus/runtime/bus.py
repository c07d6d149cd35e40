"""Raw NATS connections: one policy for reconnecting, authenticating and logging."""

from __future__ import annotations

import logging
import ssl
from typing import Any, Final

from nats.aio.client import Client, RawCredentials
from nats.errors import Error as NatsError

from voicebus.contracts.permissions import inbox_prefix
from voicebus.runtime.errors import BusError
from voicebus.runtime.provision import provision
from voicebus.runtime.settings import ServiceSettings

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DRAIN_TIMEOUT_S",
    "RECONNECT_WAIT_S",
    "connect",
    "connect_options",
    "drain",
    "provision",
    "tls_context",
    "user_credentials",
]

log = logging.getLogger(__name__)

RECONNECT_WAIT_S: Final = 1
"""Seconds between reconnect attempts: long enough not to hammer a restarting server,
short enough that a call's audio resumes within a second or two."""
CONNECT_TIMEOUT_S: Final = 2
"""Seconds one TCP/TLS connect attempt may take."""
DRAIN_TIMEOUT_S: Final = 10
"""Seconds ``drain()`` waits for in-flight messages before closing anyway."""

# Server refusals a retry can never fix (same list FastStream uses): failing fast
# beats retrying forever with wrong credentials.
_FATAL_REASONS: Final = (
    "authorization violation",
    "authorization timeout",
    "invalid client protocol",
    "maximum connections exceeded",
    "secure connection - tls required",
    "user authentication expired",
    "user authentication revoked",
    "account authentication expired",
)


def user_credentials(settings: ServiceSettings) -> str | RawCredentials | None:
    """``VB_NATS_CREDS`` as nats-py takes it: a .creds file's content, or a path to one."""
    if settings.nats_creds is None:
        return None
    creds = settings.nats_creds.get_secret_value()
    return RawCredentials(creds) if "BEGIN NATS USER JWT" in creds else creds


def _credentials(settings: ServiceSettings) -> dict[str, Any]:
    """Authentication options for nats-py from the shared settings."""
    creds = user_credentials(settings)
    if creds is not None:
        return {"user_credentials": creds}
    if settings.nats_user:
        password = settings.nats_password.get_secret_value() if settings.nats_password else ""
        return {"user": settings.nats_user, "password": password}
    return {}


def tls_context(settings: ServiceSettings) -> ssl.SSLContext | None:
    """The client TLS context of ``VB_NATS_TLS_*``: the server verified against the CA (and
    its host name), a client certificate presented when one is set; ``None`` without a CA."""
    if settings.nats_tls_ca is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.nats_tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.nats_tls_cert is not None and settings.nats_tls_key is not None:
        context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    return context


def _tls(settings: ServiceSettings) -> dict[str, Any]:
    context = tls_context(settings)
    return {} if context is None else {"tls": context}


def connect_options(settings: ServiceSettings, *, name: str) -> dict[str, Any]:
    """Options shared by every NATS connection of a service (raw and FastStream's).

    Reconnects forever; callbacks are added by the caller.
    """
    return {
        "servers": settings.nats_servers,
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": RECONNECT_WAIT_S,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "drain_timeout": DRAIN_TIMEOUT_S,
        # Replies on a prefix of the service's own: NATS permissions keep others off it.
        "inbox_prefix": inbox_prefix(type(settings).service_name),
        **_credentials(settings),
        **_tls(settings),
    }


def _is_fatal(error: Exception) -> bool:
    if not isinstance(error, NatsError):
        return False
    reason = str(error).removeprefix("nats: ").strip("'\" ").lower()
    return reason in _FATAL_REASONS


async def connect(settings: ServiceSettings, *, name: str) -> Client:
    """Connect to NATS and keep reconnecting forever.

    While the first connection is being made, unreachable servers are retried
    without limit (services may start before NATS does), but a refusal no
    retry can fix (wrong credentials, TLS required) raises at once.

    Args:
        settings: servers and credentials.
        name: connection name shown in NATS monitoring, e.g. ``gateway/<instance>/raw``.

    Returns:
        A connected nats-py client. The caller drains it on shutdown.

    Raises:
        BusError: the server refused this client for good.
    """
    nc = Client()
    connected = False

    async def on_error(error: Exception) -> None:
        if not connected and _is_fatal(error):
            # nats-py re-raises from the error callback, ending its connect loop.
            raise BusError(f"NATS refused connection {name!r}: {error}") from error
        log.warning("nats connection error", extra={"connection": name, "error": repr(error)})

    async def on_disconnected() -> None:
        if not (nc.is_draining or nc.is_closed):  # a drain's disconnect is planned
            log.warning("nats disconnected", extra={"connection": name})

    async def on_reconnected() -> None:
        log.warning("nats reconnected", extra={"connection": name})

    async def on_closed() -> None:
        log.info("nats connection closed", extra={"connection": name})

    await nc.connect(
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        closed_cb=on_closed,
        **connect_options(settings, name=name),
    )
    connected = True
    log.info("nats connected", extra={"connection": name})
    return nc


async def drain(nc: Client) -> None:
    """Drain ``nc`` (finish in-flight messages, flush, close), or close it if it cannot drain."""
    if nc.is_closed:
        return
    try:
        await nc.drain()
    except NatsError:
        # While reconnecting nothing can be drained: close without waiting.
        log.warning("nats drain impossible; closing", extra={"connection": "raw"})
        await nc.close()
