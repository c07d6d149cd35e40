"""One call's stereo recording on disk: ``<dir>/<tenant>/<call>.wav``. No bus here.

Tenant and call ids are subject tokens (``[A-Za-z0-9_-]``, checked by the
contracts), so they are safe as path parts: no separator, no ``..``.

A recording being written has a marker next to it, ``<file>.open``, removed once
the file is finished. A recorder that dies (SIGKILL) leaves file and marker; the
instance that takes the call over opens the same file (:meth:`Recording.open`) and
continues it where the audio on disk ends, so one call has one file. The file is
always valid as it is (its header is fixed after every write), so the successor
only cuts a partial sample frame. What the dead recorder held in its reorder
window, and the audio of the takeover's gap, are silence. The recordings
directory must be storage every recorder instance sees.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from voicebus.contracts.audio import AudioFrame
from voicebus.recorder.mixer import Channel, Placement, StereoMixer
from voicebus.recorder.wav import NotResumableError, WavWriter

_HASH_BLOCK = 1 << 20
_MAX_SUFFIX = 1000
MARKER_SUFFIX = ".open"


def marker_of(path: Path) -> Path:
    """The marker of an unfinished recording: ``<file>.open``."""
    return path.with_name(path.name + MARKER_SUFFIX)


def unfinished(root: Path, tenant_id: str, call_id: str) -> Path | None:
    """The call's recording that an instance started and nobody finished, if any."""
    directory = root / tenant_id
    for n in range(_MAX_SUFFIX):
        path = directory / (f"{call_id}.wav" if n == 0 else f"{call_id}-{n}.wav")
        if not path.exists():
            return None
        if marker_of(path).exists():
            return path
    return None


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
        redacted: the caller was silenced over sensitive keypad input somewhere in it.
    """

    path: Path
    key: PurePosixPath
    sample_rate: int
    frames: int
    bytes: int
    sha256: str
    redacted: bool = False

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

    def __init__(
        self,
        path: Path,
        key: PurePosixPath,
        file: BinaryIO,
        mixer: StereoMixer,
        resumed_at: int = 0,
    ) -> None:
        self.path = path
        self.key = key
        self._file = file
        self._mixer = mixer
        self.resumed_at = resumed_at
        """Sample frames an earlier writer had already written (0 for a new file)."""
        self.error: OSError | None = None
        """The write error that stopped this recording (a full disk), if any."""

    @classmethod
    def open(
        cls,
        root: Path,
        tenant_id: str,
        call_id: str,
        sample_rate: int,
        *,
        window_ms: int,
        max_jump_ms: int,
    ) -> Recording:
        """Continue the call's unfinished recording, or :meth:`create` a new one."""
        path = unfinished(root, tenant_id, call_id)
        if path is not None:
            file = path.open("r+b")
            try:
                wav = WavWriter.resume(file, sample_rate, channels=2)
                mixer = StereoMixer(wav, sample_rate, window_ms=window_ms,
                                    max_jump_ms=max_jump_ms, start_frame=wav.frames)  # fmt: skip
            except NotResumableError:
                file.close()  # another rate or a foreign file: left as it is, a new one begins
            except BaseException:
                file.close()
                raise
            else:
                key = PurePosixPath(tenant_id, path.name)
                return cls(path, key, file, mixer, resumed_at=wav.frames)
        return cls.create(
            root, tenant_id, call_id, sample_rate, window_ms=window_ms, max_jump_ms=max_jump_ms
        )

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
        marker_of(path).touch()
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

    def silence_from(self, channel: Channel, ts_ms: int) -> int:
        """Write ``channel`` as silence from ``ts_ms`` (call timeline) until
        :meth:`silence_until`.

        Returns:
            Sample frames of the span already written: too late to silence.
        """
        return self._mixer.silence_from(channel, ts_ms * self.sample_rate // 1000)

    def silence_until(self, channel: Channel, ts_ms: int) -> None:
        """End the channel's silenced span at ``ts_ms`` (call timeline)."""
        self._mixer.silence_until(channel, ts_ms * self.sample_rate // 1000)

    def discard(self) -> None:
        """Close and delete the file (the call could not be recorded)."""
        self._file.close()
        if self.resumed_at == 0:
            self.path.unlink(missing_ok=True)
            marker_of(self.path).unlink(missing_ok=True)

    def suspend(self) -> None:
        """Write what is buffered, sync and close, keeping the file unfinished: another
        instance continues it (this one is stopping while the call goes on)."""
        try:
            if self.error is None:
                self._mixer.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

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
        marker_of(self.path).unlink(missing_ok=True)
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
            redacted=self._mixer.redacted,
        )
