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

from voicebus.contracts.rpc import (
    RECORDINGS_GET,
    RECORDINGS_READ,
    GetRecording,
    ReadRecording,
    RecordingChunk,
    RecordingMeta,
    RecordingReply,
)
from voicebus.recorder.handlers import Recorder
from voicebus.recorder.recording import marker_of
from voicebus.recorder.settings import RecorderSettings
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


def register_library(broker: NatsBroker, settings: RecorderSettings, recorder: Recorder) -> None:
    """Declare the edge's recording queries on ``broker`` (file reads off the event loop)."""
    library = Library(settings.dir, recorder)

    async def recordings_get(request: GetRecording) -> RecordingReply:
        return await asyncio.to_thread(library.meta, request)

    async def recordings_read(request: ReadRecording) -> RecordingChunk:
        return await asyncio.to_thread(library.read, request)

    responder(broker, RECORDINGS_GET, GetRecording, RecordingReply, recordings_get,
              queue=QUEUE_GROUP,
              description="A call's recording (GetRecording → RecordingReply).")  # fmt: skip
    responder(broker, RECORDINGS_READ, ReadRecording, RecordingChunk, recordings_read,
              queue=QUEUE_GROUP,
              description="Bytes of a recording (ReadRecording → RecordingChunk).")  # fmt: skip
