"""Finished recordings for the REST edge: metadata and byte ranges, within one tenant.

Recordings are files ``<dir>/<tenant>/<call>.wav``, or objects
``<tenant>/<yyyy>/<mm>/<call>.wav`` of a bucket (:mod:`voicebus.recorder.archive`);
tenant and call ids are subject tokens (no separators, no ``..``), so a request can
only name a recording of its own tenant. Without a bucket each instance answers from
its own directory: with several recorder hosts, that directory must be shared storage.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from faststream.nats import NatsBroker

from voicebus.contracts.erasure import RECORDINGS_ERASE, EraseRecordings, RecordingsErased
from voicebus.contracts.retention import RECORDER_RETENTION, ApplyRetention, RetentionApplied
from voicebus.contracts.rpc import (
    RECORDINGS_GET,
    RECORDINGS_READ,
    GetRecording,
    ReadRecording,
    RecordingChunk,
    RecordingMeta,
    RecordingReply,
)
from voicebus.recorder import retention
from voicebus.recorder.archive import RecordingStore, recording_key
from voicebus.recorder.handlers import Recorder
from voicebus.recorder.recording import marker_of
from voicebus.recorder.settings import RecorderSettings
from voicebus.recorder.wav import HEADER_BYTES, header_rate
from voicebus.runtime.rpc import Conflict, NotFound, responder

log = logging.getLogger(__name__)

QUEUE_GROUP = "recorder-rpc"


def _not_found(call_id: str) -> NotFound:
    return NotFound(f"no recording of {call_id!r}", code="recording_not_found")


class Library:
    """Looks recordings up in the recordings directory.

    Args:
        root: the recordings directory.
        recorder: this instance's recorder (its live calls are not finished yet).
    """

    def __init__(self, root: Path, recorder: Recorder) -> None:
        self._root = root
        self._recorder = recorder

    def _path(self, tenant_id: str, call_id: str) -> Path:
        return self._root / tenant_id / f"{call_id}.wav"

    def meta(self, request: GetRecording) -> RecordingReply:
        """A recording's metadata.

        Raises:
            NotFound: no recording of the call for this tenant.
            Conflict: the call is still being recorded, or the file is not a WAV.
        """
        path = self._path(request.tenant_id, request.call_id)
        if request.call_id in self._recorder.live_calls or marker_of(path).exists():
            # Recorded here, or by another instance (or left for one to continue).
            raise Conflict("the call is still being recorded", code="recording_in_progress")
        try:
            with wave.open(str(path), "rb") as wav:
                rate, channels, frames = wav.getframerate(), wav.getnchannels(), wav.getnframes()
            size = path.stat().st_size
        except FileNotFoundError:
            raise _not_found(request.call_id) from None
        except (OSError, wave.Error, EOFError):
            log.warning("recording unreadable", extra={"call_id": request.call_id})
            raise Conflict(
                "the recording file is not a readable WAV", code="recording_unreadable"
            ) from None
        meta = RecordingMeta(
            call_id=request.call_id,
            uri=f"file:{request.tenant_id}/{path.name}",
            sample_rate=rate,
            channels=channels,
            duration_s=round(frames / rate, 3) if rate else 0.0,
            bytes=size,
        )
        return RecordingReply(ok=True, recording=meta)

    def read(self, request: ReadRecording) -> RecordingChunk:
        """``length`` bytes from ``offset`` (fewer at the end of the file).

        Raises:
            NotFound: no recording of the call for this tenant.
        """
        path = self._path(request.tenant_id, request.call_id)
        try:
            with path.open("rb") as file:
                size = file.seek(0, 2)
                file.seek(min(request.offset, size))
                data = file.read(request.length)
        except FileNotFoundError:
            raise _not_found(request.call_id) from None
        return RecordingChunk(ok=True, data=data, total_bytes=size)

    def erase(self, request: EraseRecordings) -> RecordingsErased:
        """Delete the calls' finished files (a call still recorded here is skipped)."""
        deleted = 0
        for call_id in request.call_ids:
            if call_id in self._recorder.live_calls:
                continue
            try:
                self._path(request.tenant_id, call_id).unlink()
            except FileNotFoundError:
                continue
            deleted += 1
        return RecordingsErased(ok=True, recordings=deleted)


class StoreLibrary:
    """Looks recordings up in the object store; calls still recorded are in the directory.

    Args:
        root: the recordings directory (the spool of calls in progress).
        recorder: this instance's recorder.
        store: the object store finished recordings are uploaded to.
        prefix: the keys' prefix (``VB_RECORDER_S3_PREFIX``).
    """

    def __init__(self, root: Path, recorder: Recorder, store: RecordingStore, prefix: str) -> None:
        self._files = Library(root, recorder)
        self._root = root
        self._recorder = recorder
        self._store = store
        self._prefix = prefix

    def _key(self, tenant_id: str, call_id: str) -> str:
        return recording_key(tenant_id, call_id, prefix=self._prefix)

    async def meta(self, request: GetRecording) -> RecordingReply:
        """A recording's metadata (from its WAV header, read with one ranged request).

        Raises:
            NotFound: no recording of the call for this tenant.
            Conflict: the call is still being recorded, or the object is not a WAV.
        """
        local = self._root / request.tenant_id / f"{request.call_id}.wav"
        if request.call_id in self._recorder.live_calls or marker_of(local).exists():
            raise Conflict("the call is still being recorded", code="recording_in_progress")
        key = self._key(request.tenant_id, request.call_id)
        try:
            header, size = await self._store.read(key, 0, HEADER_BYTES)
        except FileNotFoundError:
            # Not uploaded (the store refused it): the file stayed in the directory.
            return await asyncio.to_thread(self._files.meta, request)
        rate = header_rate(header)
        channels = int.from_bytes(header[22:24], "little") if rate else 0
        if not rate or not channels:
            log.warning("recording unreadable", extra={"call_id": request.call_id})
            raise Conflict("the recording is not a readable WAV", code="recording_unreadable")
        frames = (size - HEADER_BYTES) // (2 * channels)
        meta = RecordingMeta(
            call_id=request.call_id,
            uri=self._store.uri(key),
            sample_rate=rate,
            channels=channels,
            duration_s=round(frames / rate, 3),
            bytes=size,
        )
        return RecordingReply(ok=True, recording=meta)

    async def read(self, request: ReadRecording) -> RecordingChunk:
        """``length`` bytes from ``offset`` (fewer at the end), one ranged request.

        Raises:
            NotFound: no recording of the call for this tenant.
        """
        key = self._key(request.tenant_id, request.call_id)
        try:
            data, size = await self._store.read(key, request.offset, request.length)
        except FileNotFoundError:
            return await asyncio.to_thread(self._files.read, request)
        return RecordingChunk(ok=True, data=data, total_bytes=size)

    async def erase(self, request: EraseRecordings) -> RecordingsErased:
        """Delete the calls' objects, and files the store never took."""
        deleted = 0
        for call_id in request.call_ids:
            if await self._store.delete(self._key(request.tenant_id, call_id)):
                deleted += 1
        files = await asyncio.to_thread(self._files.erase, request)
        return RecordingsErased(ok=True, recordings=deleted + files.recordings)

    async def expire(self, tenant_id: str, before: datetime) -> int:
        """Delete the tenant's objects of calls started before ``before``."""
        listing = await self._store.listing(f"{self._prefix}{tenant_id}/")
        deleted = 0
        for key in retention.expired_keys(listing, before, self._recorder.live_calls):
            if await self._store.delete(key):
                deleted += 1
        return deleted


def register_library(
    broker: NatsBroker,
    settings: RecorderSettings,
    recorder: Recorder,
    store: RecordingStore | None = None,
) -> None:
    """Declare the edge's recording queries on ``broker`` (file reads off the event loop)."""
    if store is not None:
        objects = StoreLibrary(settings.dir, recorder, store, settings.s3_prefix)
        recordings_get: Callable[[GetRecording], Awaitable[RecordingReply]] = objects.meta
        recordings_read: Callable[[ReadRecording], Awaitable[RecordingChunk]] = objects.read
        recordings_erase: Callable[[EraseRecordings], Awaitable[RecordingsErased]] = objects.erase
    else:
        library = Library(settings.dir, recorder)

        async def recordings_get(request: GetRecording) -> RecordingReply:
            return await asyncio.to_thread(library.meta, request)

        async def recordings_read(request: ReadRecording) -> RecordingChunk:
            return await asyncio.to_thread(library.read, request)

        async def recordings_erase(request: EraseRecordings) -> RecordingsErased:
            return await asyncio.to_thread(library.erase, request)

    async def retention_apply(request: ApplyRetention) -> RetentionApplied:
        if request.recordings_before is None:
            return RetentionApplied(ok=True)
        before = request.recordings_before
        deleted = await asyncio.to_thread(
            retention.expire, settings.dir, request.tenant_id, before,
            frozenset(recorder.live_calls),
        )  # fmt: skip
        if store is not None:
            objects = StoreLibrary(settings.dir, recorder, store, settings.s3_prefix)
            deleted += await objects.expire(request.tenant_id, before)
        return RetentionApplied(ok=True, recordings=deleted)

    responder(broker, RECORDINGS_GET, GetRecording, RecordingReply, recordings_get,
              queue=QUEUE_GROUP,
              description="A call's recording (GetRecording → RecordingReply).")  # fmt: skip
    responder(broker, RECORDINGS_READ, ReadRecording, RecordingChunk, recordings_read,
              queue=QUEUE_GROUP,
              description="Bytes of a recording (ReadRecording → RecordingChunk).")  # fmt: skip
    responder(broker, RECORDINGS_ERASE, EraseRecordings, RecordingsErased, recordings_erase,
              queue=QUEUE_GROUP,
              description="Delete recordings (EraseRecordings → RecordingsErased).")  # fmt: skip
    responder(broker, RECORDER_RETENTION, ApplyRetention, RetentionApplied, retention_apply,
              queue=QUEUE_GROUP,
              description="Delete old recordings (ApplyRetention → RetentionApplied).")  # fmt: skip
