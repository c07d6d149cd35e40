"""Campaigns from the bus side: an RPC client, a simulated provider for tests, and the
``campaign`` benchmark (the ``voicebus campaign`` command goes through the REST edge)."""
