"""One call's stereo recording on disk: ``<dir>/<tenant>/<call>.wav``. No bus here.

Tenant and call ids are subject tokens (``[A-Za-z0-9_-]``, checked by the
contracts), so they are safe as path parts: no separator, no ``..``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from voicebus.contracts.audio import AudioFrame
from voicebus.recorder.mixer import Channel, Placement, StereoMixer
from voicebus.recorder.wav import WavWriter

_HASH_BLOCK = 1 << 20
_MAX_SUFFIX = 1000


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """A finalized recording.

    Attributes:
        path: the file.
        key: its path relative to the recordings directory (``<tenant>/<call>.wav``).
        sample_rate: samples per second per channel.
        frames: sample frames per channel.
        bytes: file size.
        sha256: hex digest of the whole file.
    """

    path: Path
    key: PurePosixPath
    sample_rate: int
    frames: int
    bytes: int
    sha256: str

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def uri(self) -> str:
        """``file:<tenant>/<call>.wav``, relative to the recordings directory.

        Relative so that events name the recording the same way wherever the
        directory is mounted, as an object-store key would.
        """
        return f"file:{self.key}"


def _create_exclusive(directory: Path, call_id: str) -> tuple[Path, BinaryIO]:
    """Open ``<call>.wav`` for writing, or ``<call>-<n>.wav`` if a file is already there.

    A call recorded by an earlier owner (an instance that stopped mid-call)
    keeps its file; the new owner records the rest next to it.
    """
    for n in range(_MAX_SUFFIX):
        path = directory / (f"{call_id}.wav" if n == 0 else f"{call_id}-{n}.wav")
        try:
            return path, path.open("xb")
        except FileExistsError:
            continue
    raise FileExistsError(f"too many recordings of call {call_id} in {directory}")


class Recording:
    """A stereo WAV being written: caller left, agent right.

    Use :meth:`create`; then :meth:`add` frames from the event loop and
    :meth:`finish` once (it blocks on disk I/O: run it in a worker thread).
    """

    def __init__(self, path: Path, key: PurePosixPath, file: BinaryIO, mixer: StereoMixer) -> None:
        self.path = path
        self.key = key
        self._file = file
        self._mixer = mixer
        self.error: OSError | None = None
        """The write error that stopped this recording (a full disk), if any."""

    @classmethod
    def create(
        cls,
        root: Path,
        tenant_id: str,
        call_id: str,
        sample_rate: int,
        *,
        window_ms: int,
        max_jump_ms: int,
    ) -> Recording:
        """Create the call's file under ``root`` and a mixer writing into it."""
        directory = root / tenant_id
        directory.mkdir(parents=True, exist_ok=True)
        path, file = _create_exclusive(directory, call_id)
        try:
            wav = WavWriter(file, sample_rate, channels=2)
            mixer = StereoMixer(wav, sample_rate, window_ms=window_ms, max_jump_ms=max_jump_ms)
        except BaseException:
            file.close()
            raise
        return cls(path, PurePosixPath(tenant_id, path.name), file, mixer)

    @property
    def sample_rate(self) -> int:
        """The recording's rate (the call's)."""
        return self._mixer.sample_rate

    def add(self, channel: Channel, frame: AudioFrame) -> Placement | None:
        """Place one frame at its timestamp on ``channel``.

        Returns:
            What became of it, or None once writing the file has failed: the
            rest of the call is dropped and :meth:`finish` raises the error.
        """
        if self.error is not None:
            return None
        try:
            return self._mixer.add(channel, frame.ts_ms, frame.pcm, frame.sample_rate)
        except OSError as err:
            self.error = err
            return None

    def discard(self) -> None:
        """Close and delete the file (the call could not be recorded)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def finish(self, min_duration_s: float = 0.0) -> RecordingInfo:
        """Write what is buffered, fix the header, sync, close and hash the file.

        Args:
            min_duration_s: pad with silence to at least this length (the call's duration).
        """
        try:
            if self.error is not None:
                raise self.error
            frames = self._mixer.finish(round(min_duration_s * self.sample_rate))
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        digest = hashlib.sha256()
        with self.path.open("rb") as file:
            while block := file.read(_HASH_BLOCK):
                digest.update(block)
        return RecordingInfo(
            path=self.path,
            key=self.key,
            sample_rate=self.sample_rate,
            frames=frames,
            bytes=self.path.stat().st_size,
            sha256=digest.hexdigest(),
        )
