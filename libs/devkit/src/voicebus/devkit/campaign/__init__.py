"""Campaigns from the outside: an RPC client, the ``voicebus campaign`` command, a
simulated provider for tests, and the ``campaign`` benchmark."""
