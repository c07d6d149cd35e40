"""The edge stack of the console's browser tests."""

from __future__ import annotations

from pathlib import Path

from edge_stack import EdgeStack

from voicebus.devkit.embedded_nats import EmbeddedNats

LOOPBACK_HOSTS = ["127.0.0.1"]
"""Where the campaigns tests' stand-in carrier listens: an account's ``api_base_url`` may
name it, and webhooks may be delivered on loopback."""


class ConsoleStack(EdgeStack):
    """The edge stack, and its nats-server's monitoring URL (who subscribed to what). Provider
    accounts may point at loopback stand-in carriers, webhooks at loopback receivers."""

    def __init__(self, server: EmbeddedNats, postgres_url: str, root: Path) -> None:
        super().__init__(
            server.url,
            postgres_url,
            root,
            gateway={"provider_api_hosts": LOOPBACK_HOSTS},
            edge={"provider_api_hosts": LOOPBACK_HOSTS, "webhooks_allow_loopback": True},
        )
        self.monitor_url = server.monitor_url
