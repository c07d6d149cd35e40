"""The browser call page: served by the edge, the call itself runs on the gateway."""
