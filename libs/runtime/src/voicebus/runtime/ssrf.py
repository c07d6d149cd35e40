"""The guard every outbound request to a tenant's URL passes: no loopback, private or
link-local target (webhook tools, MCP servers, outbound event webhooks).

A tenant's webhook URL is the tenant's choice, so it could name the platform's
own network (the metadata service at 169.254.169.254, a database on 10.0.0.5,
a service on 127.0.0.1). Every address the host name resolves to is checked,
and the operator may allow loopback (tests, a local demo) or private networks
(an on-premises deployment) explicitly. Redirects are never followed, so a
public server cannot bounce a request inward.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from voicebus.runtime.errors import VoicebusError


class TargetRefusedError(VoicebusError):
    """The URL's host is not a public address (or cannot be resolved)."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Which non-public targets the operator allows.

    Attributes:
        allow_loopback: 127.0.0.0/8 and ::1.
        allow_private: RFC 1918, unique-local and carrier-grade NAT ranges.
    """

    allow_loopback: bool = False
    allow_private: bool = False

    def refuses(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why ``address`` is refused, or None."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.refuses(address.ipv4_mapped)
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_multicast or address.is_unspecified or address.is_reserved:
            return "not a unicast address"
        if address.is_private or address in ipaddress.ip_network("100.64.0.0/10"):
            return None if self.allow_private else "a private address"
        return None


async def check_target(url: str, policy: TargetPolicy) -> None:
    """Resolve ``url``'s host and refuse it unless every address is allowed.

    Raises:
        TargetRefusedError: naming why (never the resolved addresses).
    """
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefusedError("only http and https URLs with a host are allowed")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError:
            raise TargetRefusedError(f"host {host!r} cannot be resolved") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        why = policy.refuses(address)
        if why is not None:
            raise TargetRefusedError(f"host {host!r} is {why}; the operator has not allowed it")
