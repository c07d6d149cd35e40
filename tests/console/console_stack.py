"""The edge stack of the console's browser tests."""

from __future__ import annotations

from pathlib import Path

from edge_stack import EdgeStack

from voicebus.devkit.embedded_nats import EmbeddedNats


class ConsoleStack(EdgeStack):
    """The edge stack, and its nats-server's monitoring URL (who subscribed to what)."""

    def __init__(self, server: EmbeddedNats, postgres_url: str, root: Path) -> None:
        super().__init__(server.url, postgres_url, root)
        self.monitor_url = server.monitor_url
