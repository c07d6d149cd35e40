"""Outbound endpoints of cloud engines, checked before anything connects (SSRF).

An agent's options may name a ``base_url`` (stand-ins, proxies, OpenAI-compatible
servers). Where tenants can write agents, such a URL must not reach the platform's
own network: loopback, private, link-local and other non-public addresses are refused
unless the process allows them (development, tests, a local LLM server). The host is
checked when the engine is created (literal addresses) and again when it connects
(every address the name resolves to).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from voicebus.engines.base import EngineError

_SCHEMES = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def check_url(engine: str, url: str, *, allow_private: bool, field: str = "base_url") -> str:
    """Validate an endpoint URL's form and, when it is a literal address, its host.

    Returns:
        The URL without a trailing slash.

    Raises:
        EngineError: naming the option, when the URL is unusable or not allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise EngineError(
            f"{engine}: option {field!r} must be an http(s) or ws(s) URL with a host",
            kind="config",
        )
    if parts.username or parts.password:
        raise EngineError(f"{engine}: option {field!r} must not carry credentials", kind="config")
    host = parts.hostname
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise EngineError(f"{engine}: option {field!r} points at this machine", kind="config")
        try:
            literal = _public(host)
        except ValueError:
            literal = True  # a name: checked when connecting
        if not literal:
            raise EngineError(
                f"{engine}: option {field!r} points at a non-public address", kind="config"
            )
    return url.rstrip("/")


async def check_resolved(engine: str, url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to a non-public address (unless allowed).

    Raises:
        EngineError: the host does not resolve, or resolves to a refused address.
    """
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _SCHEMES.get(parts.scheme, 443)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EngineError(
            f"{engine}: cannot resolve the vendor's host", retryable=True, kind="unavailable"
        ) from exc
    if not infos or not all(_public(str(info[4][0])) for info in infos):
        raise EngineError(
            f"{engine}: the vendor's host resolves to a non-public address", kind="config"
        )
