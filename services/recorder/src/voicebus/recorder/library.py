"""Finished recordings for the REST edge: metadata and byte ranges, within one tenant.

Recordings are files ``<dir>/<tenant>/<call>.wav``; tenant and call ids are
subject tokens (no separators, no ``..``), so a request can only name a file
of its own tenant. Each instance answers from its own directory: with several
recorder hosts, the recordings directory must be shared storage.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from voicebus.contracts.rpc import (
    RECORDINGS_GET,
    RECORDINGS_READ,
    GetRecording,
    ReadRecording,
    RecordingChunk,
    RecordingMeta,
    RecordingReply,
    RpcError,
)
from voicebus.recorder.handlers import Recorder
from voicebus.recorder.settings import RecorderSettings

log = logging.getLogger(__name__)

QUEUE_GROUP = "recorder-rpc"


def _bad_request(exc: ValidationError) -> RpcError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return RpcError(status=400, code="bad_request", message=problems[:1024])


def _not_found(call_id: str) -> RpcError:
    return RpcError(status=404, code="recording_not_found", message=f"no recording of {call_id!r}")


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
        """A recording's metadata, 404, or 409 while it is still being recorded."""
        if request.call_id in self._recorder.live_calls:
            error = RpcError(
                status=409, code="recording_in_progress", message="the call is still being recorded"
            )
            return RecordingReply(ok=False, error=error)
        path = self._path(request.tenant_id, request.call_id)
        try:
            with wave.open(str(path), "rb") as wav:
                rate, channels, frames = wav.getframerate(), wav.getnchannels(), wav.getnframes()
            size = path.stat().st_size
        except FileNotFoundError:
            return RecordingReply(ok=False, error=_not_found(request.call_id))
        except (OSError, wave.Error, EOFError):
            log.warning("recording unreadable", extra={"call_id": request.call_id})
            error = RpcError(
                status=409,
                code="recording_unreadable",
                message="the recording file is not a readable WAV",
            )
            return RecordingReply(ok=False, error=error)
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
        """``length`` bytes from ``offset`` (fewer at the end of the file)."""
        path = self._path(request.tenant_id, request.call_id)
        try:
            with path.open("rb") as file:
                size = file.seek(0, 2)
                file.seek(min(request.offset, size))
                data = file.read(request.length)
        except FileNotFoundError:
            return RecordingChunk(ok=False, error=_not_found(request.call_id))
        return RecordingChunk(ok=True, data=data, total_bytes=size)


def register_library(broker: NatsBroker, settings: RecorderSettings, recorder: Recorder) -> None:
    """Declare the edge's recording queries on ``broker``."""
    library = Library(settings.dir, recorder)

    @broker.subscriber(
        RECORDINGS_GET,
        queue=QUEUE_GROUP,
        description="A call's recording (GetRecording → RecordingReply).",
    )
    async def recordings_get(msg: NatsMessage) -> RecordingReply:
        try:
            request = GetRecording.model_validate_json(msg.body)
        except ValidationError as exc:
            return RecordingReply(ok=False, error=_bad_request(exc))
        return await asyncio.to_thread(library.meta, request)

    @broker.subscriber(
        RECORDINGS_READ,
        queue=QUEUE_GROUP,
        description="Bytes of a recording (ReadRecording → RecordingChunk).",
    )
    async def recordings_read(msg: NatsMessage) -> RecordingChunk:
        try:
            request = ReadRecording.model_validate_json(msg.body)
        except ValidationError as exc:
            return RecordingChunk(ok=False, error=_bad_request(exc))
        return await asyncio.to_thread(library.read, request)
