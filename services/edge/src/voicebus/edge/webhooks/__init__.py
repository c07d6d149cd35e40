"""Outbound webhooks: tenants' subscriptions to their call events, signed HTTP deliveries."""
