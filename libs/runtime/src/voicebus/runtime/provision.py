"""Create or update the JetStream streams and KV buckets defined in the contracts.

Every service provisions at start-up, so this is idempotent and safe to run
concurrently: an identical stream is left alone, a different one is updated
to the contract's definition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from faststream.nats import JStream
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from voicebus.contracts.streams import (
    CALL_OWNERS,
    EVENTS,
    KV_BUCKETS,
    STREAMS,
    KVSpec,
    Retention,
    StreamSpec,
)
from voicebus.runtime.errors import ProvisioningError

__all__ = [
    "jstream",
    "kv_buckets",
    "kv_config",
    "kv_stream_name",
    "provision",
    "stream_config",
]

log = logging.getLogger(__name__)

# JetStream error code for "stream name already in use with a different configuration".
_STREAM_NAME_IN_USE: Final = 10058
# nats-py's KV duplicate window: two minutes, or the TTL when shorter.
_KV_DUPLICATE_WINDOW_S: Final = 120.0

_RETENTION: Final = {
    Retention.LIMITS: RetentionPolicy.LIMITS,
    Retention.WORK_QUEUE: RetentionPolicy.WORK_QUEUE,
}


def stream_config(spec: StreamSpec, *, replicas: int = 1) -> StreamConfig:
    """The nats-py config for a contract stream (file storage).

    Args:
        spec: the stream as the contracts define it.
        replicas: JetStream replicas; 1 on a single server, 3 in a cluster.
    """
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=_RETENTION[spec.retention],
        max_age=spec.max_age_s,
        duplicate_window=spec.duplicate_window_s,
        max_msg_size=spec.max_msg_bytes,
        max_bytes=spec.max_bytes,
        storage=StorageType.FILE,
        num_replicas=replicas,
    )


def kv_config(spec: KVSpec, *, replicas: int = 1) -> KeyValueConfig:
    """The nats-py config for a contract KV bucket (file storage).

    Args:
        spec: the bucket as the contracts define it.
        replicas: JetStream replicas; 1 on a single server, 3 in a cluster.
    """
    return KeyValueConfig(
        bucket=spec.bucket,
        description=spec.description,
        ttl=spec.ttl_s or None,
        history=spec.history,
        storage=StorageType.FILE,
        replicas=replicas,
    )


def streams_with_caps(*, events_max_bytes: int = -1) -> tuple[StreamSpec, ...]:
    """The contracts' streams, ``VB_EVENTS`` with the byte cap of this deployment."""
    return tuple(
        replace(spec, max_bytes=events_max_bytes) if spec.name == EVENTS.name else spec
        for spec in STREAMS
    )


def kv_buckets(call_lease_ttl_s: float = CALL_OWNERS.ttl_s) -> tuple[KVSpec, ...]:
    """The contracts' KV buckets, with the call-ownership leases' TTL as configured.

    Args:
        call_lease_ttl_s: ``VB_CALL_LEASE_TTL_S``; a bucket's TTL applies to all its
            entries, so every process on one NATS must agree on it.
    """
    return tuple(
        replace(spec, ttl_s=call_lease_ttl_s) if spec.bucket == CALL_OWNERS.bucket else spec
        for spec in KV_BUCKETS
    )


def kv_stream_name(bucket: str) -> str:
    """The stream that backs a KV bucket (``KV_<bucket>``)."""
    return f"KV_{bucket}"


def jstream(spec: StreamSpec) -> JStream:
    """A FastStream ``JStream`` for a contract stream, for ``broker.subscriber(stream=...)``.

    ``declare=False``: FastStream would otherwise create the stream from its
    own defaults and, on a mismatch, overwrite the contract's retention and
    limits. The runtime provisions the stream instead.
    """
    return JStream(name=spec.name, subjects=list(spec.subjects), declare=False)


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    name = str(config.name)
    try:
        await js.add_stream(config=config)
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise ProvisioningError(name, str(exc.description)) from exc
        try:
            await js.update_stream(config=config)
        except BadRequestError as update_exc:
            raise ProvisioningError(name, str(update_exc.description)) from update_exc
        log.warning("stream updated to the contract definition", extra={"stream": name})


async def _ensure_kv(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.create_key_value(config=config)
        return
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise ProvisioningError(config.bucket, str(exc.description)) from exc
    # The bucket exists with other limits: update its stream, keeping what nats-py set.
    stream = kv_stream_name(config.bucket)
    current = (await js.stream_info(stream)).config
    ttl = config.ttl or 0.0
    updated = current.evolve(
        description=config.description,
        max_age=ttl,
        max_msgs_per_subject=config.history,
        duplicate_window=min(_KV_DUPLICATE_WINDOW_S, ttl) if ttl else _KV_DUPLICATE_WINDOW_S,
        num_replicas=config.replicas,
    )
    try:
        await js.update_stream(config=updated)
    except BadRequestError as exc:
        raise ProvisioningError(config.bucket, str(exc.description)) from exc
    log.warning("kv bucket updated to the contract definition", extra={"bucket": config.bucket})


async def provision(
    js: JetStreamContext,
    streams: Iterable[StreamSpec] = STREAMS,
    kv_buckets: Iterable[KVSpec] = KV_BUCKETS,
    *,
    replicas: int = 1,
) -> None:
    """Create or update every stream and KV bucket; idempotent and concurrency-safe.

    Args:
        js: a JetStream context.
        streams: streams to provision; all of the contracts' by default.
        kv_buckets: KV buckets to provision; all of the contracts' by default.
        replicas: JetStream replicas for everything provisioned.

    Raises:
        ProvisioningError: the server refused a definition, e.g. a retention
            change on an existing stream or subjects overlapping another stream.
    """
    for spec in streams:
        await _ensure_stream(js, stream_config(spec, replicas=replicas))
    for kv in kv_buckets:
        await _ensure_kv(js, kv_config(kv, replicas=replicas))
    log.info("jetstream provisioned")
