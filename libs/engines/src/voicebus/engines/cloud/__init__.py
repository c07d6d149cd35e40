"""Cloud engines: vendors' streaming APIs spoken directly (WebSocket, SSE), keys per tenant."""
