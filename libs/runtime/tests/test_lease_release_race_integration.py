"""A call's lease released while its renewal is in flight is still given up, without error.

The release's delete names the revision it knew; the renewal moved it on, so JetStream
refuses the delete (a plain BadRequestError from nats-py's KV). Seen under load as a
failing ``call.ended`` handler, and the renewal would have kept the lease alive for good.
"""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from voicebus.contracts.ids import new_id
from voicebus.contracts.streams import CALL_OWNERS, owner_key
from voicebus.runtime.leases import CallLeases
from voicebus.runtime.provision import provision

pytestmark = pytest.mark.integration


async def test_release_during_renewal(nats_client: Client) -> None:
    js = nats_client.jetstream()
    await provision(js)
    kv = await js.key_value(CALL_OWNERS.bucket)
    leases = CallLeases(kv, "recorder", "recorder-a")
    for _ in range(20):  # the race needs the update ahead of the delete: make it likely
        call = new_id()
        assert await leases.claim(call)
        await asyncio.gather(leases.renew(), leases.release(call))
        assert call not in leases.held
        with pytest.raises(KeyNotFoundError):
            await kv.get(owner_key("recorder", call))
