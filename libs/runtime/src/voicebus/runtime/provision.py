"""Create or update the JetStream streams and KV buckets defined in the contracts.

Every service provisions at start-up, so this is idempotent and safe to run
concurrently: an identical stream is left alone, a different one is updated
to the contract's definition.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from faststream.nats import JStream
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError

from voicebus.contracts import permissions
from voicebus.contracts.streams import (
    CALL_OWNERS,
    CALL_SLOTS,
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
    "used_by",
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


def stream_config(spec: StreamSpec, *, replicas: int = 1, storage: str = "file") -> StreamConfig:
    """The nats-py config for a contract stream.

    Args:
        spec: the stream as the contracts define it.
        replicas: JetStream replicas; 1 on a single server, 3 in a cluster.
        storage: ``file`` (durable) or ``memory``.
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
        storage=StorageType(storage),
        num_replicas=replicas,
    )


def kv_config(spec: KVSpec, *, replicas: int = 1, storage: str = "file") -> KeyValueConfig:
    """The nats-py config for a contract KV bucket.

    Args:
        spec: the bucket as the contracts define it.
        replicas: JetStream replicas; 1 on a single server, 3 in a cluster.
        storage: ``file`` (durable) or ``memory``.
    """
    return KeyValueConfig(
        bucket=spec.bucket,
        description=spec.description,
        ttl=spec.ttl_s or None,
        history=spec.history,
        storage=StorageType(storage),
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
            entries, so every process on one NATS must agree on it. The concurrent-call
            slots are renewed with the call leases, so they take the same TTL.
    """
    leased = {CALL_OWNERS.bucket, CALL_SLOTS.bucket}
    return tuple(
        replace(spec, ttl_s=call_lease_ttl_s) if spec.bucket in leased else spec
        for spec in KV_BUCKETS
    )


def kv_stream_name(bucket: str) -> str:
    """The stream that backs a KV bucket (``KV_<bucket>``)."""
    return permissions.kv_stream(bucket)


def used_by(
    service: str, streams: Iterable[StreamSpec], buckets: Iterable[KVSpec]
) -> tuple[tuple[StreamSpec, ...], tuple[KVSpec, ...]]:
    """The streams and KV buckets ``service`` provisions: those its JetStream grant names.

    A service's NATS user may create or update nothing else
    (:data:`voicebus.contracts.permissions.JETSTREAM`). A name outside that table (a
    test's service, running as the operator) provisions everything.
    """
    use = permissions.JETSTREAM.get(service)
    if use is None:
        return tuple(streams), tuple(buckets)
    return (
        tuple(s for s in streams if s.name in use.streams),
        tuple(b for b in buckets if b.bucket in use.buckets),
    )


def jstream(spec: StreamSpec) -> JStream:
    """A FastStream ``JStream`` for a contract stream, for ``broker.subscriber(stream=...)``.

    ``declare=False``: FastStream would otherwise create the stream from its
    own defaults and, on a mismatch, overwrite the contract's retention and
    limits. The runtime provisions the stream instead.
    """
    return JStream(name=spec.name, subjects=list(spec.subjects), declare=False)


async def _ensure_stream(
    js: JetStreamContext, config: StreamConfig, *, keep_replicas: bool
) -> None:
    name = str(config.name)
    try:
        await js.add_stream(config=config)
        return
    except APIError as exc:
        if not isinstance(exc, BadRequestError) or exc.err_code != _STREAM_NAME_IN_USE:
            raise ProvisioningError(name, str(exc.description)) from exc
    current = (await js.stream_info(name)).config
    if keep_replicas:
        config = replace(config, num_replicas=current.num_replicas)
        with contextlib.suppress(BadRequestError):
            await js.add_stream(config=config)  # identical to what exists: nothing to do
            return
    try:
        await js.update_stream(config=config)
    except APIError as update_exc:
        raise ProvisioningError(name, str(update_exc.description)) from update_exc
    _log_update("stream updated to the contract definition", name, current, config)


async def _ensure_kv(js: JetStreamContext, config: KeyValueConfig, *, keep_replicas: bool) -> None:
    try:
        await js.create_key_value(config=config)
        return
    except APIError as exc:
        if not isinstance(exc, BadRequestError) or exc.err_code != _STREAM_NAME_IN_USE:
            raise ProvisioningError(config.bucket, str(exc.description)) from exc
    # The bucket exists with other limits: update its stream, keeping what nats-py set.
    stream = kv_stream_name(config.bucket)
    current = (await js.stream_info(stream)).config
    if keep_replicas and current.num_replicas != config.replicas:
        config = replace(config, replicas=current.num_replicas or 1)
        with contextlib.suppress(BadRequestError):
            await js.create_key_value(config=config)  # identical but for replicas: done
            return
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
    except APIError as exc:
        raise ProvisioningError(config.bucket, str(exc.description)) from exc
    _log_update("kv bucket updated to the contract definition", config.bucket, current, updated)


def _log_update(message: str, name: str, before: StreamConfig, after: StreamConfig) -> None:
    log.warning(
        message,
        extra={
            "stream": name,
            "replicas_before": before.num_replicas,
            "replicas": after.num_replicas,
        },
    )


async def provision(
    js: JetStreamContext,
    streams: Iterable[StreamSpec] = STREAMS,
    kv_buckets: Iterable[KVSpec] = KV_BUCKETS,
    *,
    replicas: int | None = None,
    storage: str = "file",
) -> None:
    """Create or update every stream and KV bucket; idempotent and concurrency-safe.

    Args:
        js: a JetStream context.
        streams: streams to provision; all of the contracts' by default.
        kv_buckets: KV buckets to provision; all of the contracts' by default.
        replicas: JetStream replicas for everything provisioned (``VB_JETSTREAM_REPLICAS``).
            None creates new definitions with one replica and leaves the replicas of
            existing ones as they are, so a process started without the setting never
            shrinks a clustered stream to R1.
        storage: ``file`` or ``memory`` (``VB_JETSTREAM_STORAGE``) for new definitions;
            JetStream cannot change an existing stream's storage, so a mismatch is a
            ``ProvisioningError`` naming the stream, never a silent change.

    Raises:
        ProvisioningError: the server refused a definition, e.g. a retention
            change on an existing stream, subjects overlapping another stream, or
            more replicas than the cluster has servers.
    """
    keep = replicas is None
    for spec in streams:
        config = stream_config(spec, replicas=replicas or 1, storage=storage)
        await _ensure_stream(js, config, keep_replicas=keep)
    for kv in kv_buckets:
        config_kv = kv_config(kv, replicas=replicas or 1, storage=storage)
        await _ensure_kv(js, config_kv, keep_replicas=keep)
    log.info("jetstream provisioned")
