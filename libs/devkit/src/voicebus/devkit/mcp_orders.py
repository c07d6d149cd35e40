"""A small MCP server built with the ``mcp`` package: order lookups, over stdio or HTTP.

``python -m voicebus.devkit.mcp_orders`` serves it over stdio; tests mount
:func:`server`'s streamable HTTP app on a local port.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

ORDERS = {"1234": {"status": "shipped", "eta": "Monday"}}


def server() -> MCPServer[Any]:
    """The server: one tool, ``order_status``, and one that always fails."""
    mcp = MCPServer("orders")

    @mcp.tool()
    def order_status(order_id: str) -> dict[str, str]:
        """Look an order up by its number."""
        found = ORDERS.get(order_id.strip())
        return (
            {"order_id": order_id, **found}
            if found
            else {"order_id": order_id, "status": "unknown"}
        )

    @mcp.tool()
    def broken(order_id: str) -> str:
        """Always fails."""
        raise ValueError("the order system is down")

    return mcp


if __name__ == "__main__":
    server().run("stdio")
