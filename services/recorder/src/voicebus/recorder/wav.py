"""A RIFF/WAVE PCM16 file written incrementally, its header fixed up as it grows.

The header's two size fields are rewritten after every append batch (the
caller decides how often), so a recorder that dies mid-call leaves a valid
file holding everything written so far, not one that claims zero samples.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Final

SAMPLE_WIDTH: Final = 2
"""Bytes per sample: PCM16LE."""
HEADER_BYTES: Final = 44
MAX_DATA_BYTES: Final = 0xFFFFFFFF - (HEADER_BYTES - 8)
"""RIFF sizes are 32-bit: the largest ``data`` chunk a plain WAV can describe."""

_RIFF_SIZE_AT: Final = 4
_DATA_SIZE_AT: Final = 40
_PCM: Final = 1


def wav_header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """The 44-byte header of a PCM16 WAV file whose ``data`` chunk has ``data_bytes``.

    Raises:
        ValueError: ``data_bytes`` is negative, odd for the frame size, or too large.
    """
    block_align = channels * SAMPLE_WIDTH
    if data_bytes < 0 or data_bytes > MAX_DATA_BYTES or data_bytes % block_align:
        raise ValueError(f"invalid WAV data size {data_bytes} for {channels} channel(s)")
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        HEADER_BYTES - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        SAMPLE_WIDTH * 8,
        b"data",
        data_bytes,
    )


def header_rate(header: bytes) -> int | None:
    """The sample rate in a WAV header this module wrote, or None if it is not one."""
    if len(header) < HEADER_BYTES or header[:4] != b"RIFF" or header[8:16] != b"WAVEfmt ":
        return None
    rate: int = struct.unpack_from("<I", header, 24)[0]
    return rate


class NotResumableError(ValueError):
    """A file is not a PCM16 WAV of the expected rate and channels: it cannot be continued."""


class WavWriter:
    """Appends interleaved PCM16LE frames to a seekable binary file.

    Args:
        file: an empty, seekable file opened for writing; closed by :meth:`close`.
        sample_rate: samples per second per channel.
        channels: interleaved channels in every appended block.
        data_bytes: bytes of samples already in the file (see :meth:`resume`); 0 writes
            a fresh header.
    """

    def __init__(
        self, file: BinaryIO, sample_rate: int, channels: int, *, data_bytes: int = 0
    ) -> None:
        self._file = file
        self.sample_rate = sample_rate
        self.channels = channels
        self._data_bytes = data_bytes
        self._closed = False
        if data_bytes == 0:
            file.write(wav_header(sample_rate, channels, 0))

    @classmethod
    def resume(cls, file: BinaryIO, sample_rate: int, channels: int) -> WavWriter:
        """Continue a file this writer started (another process that died, say).

        The sizes in the header may lag what was written after the last
        :meth:`fix_header`; the file's length is what counts, cut down to whole
        sample frames (a partial frame is a write the writer's death interrupted).

        Raises:
            NotResumableError: not a 44-byte-header PCM16 WAV of this rate and channels.
        """
        file.seek(0)
        header = file.read(HEADER_BYTES)
        expected = wav_header(sample_rate, channels, 0)
        # Everything but the two size fields must match what this writer writes.
        same = (
            len(header) == HEADER_BYTES
            and header[:_RIFF_SIZE_AT] == expected[:_RIFF_SIZE_AT]
            and header[8:_DATA_SIZE_AT] == expected[8:_DATA_SIZE_AT]
        )
        if not same:
            raise NotResumableError("not a PCM16 WAV of this rate and channel count")
        size = file.seek(0, 2)
        block = channels * SAMPLE_WIDTH
        data_bytes = min((size - HEADER_BYTES) // block * block, MAX_DATA_BYTES // block * block)
        file.truncate(HEADER_BYTES + data_bytes)
        file.seek(HEADER_BYTES + data_bytes)
        writer = cls(file, sample_rate, channels, data_bytes=data_bytes)
        writer.fix_header()
        return writer

    @property
    def data_bytes(self) -> int:
        """Bytes of samples written so far."""
        return self._data_bytes

    @property
    def frames(self) -> int:
        """Sample frames (one sample per channel) written so far."""
        return self._data_bytes // (self.channels * SAMPLE_WIDTH)

    @property
    def room(self) -> int:
        """Sample frames that still fit under the 4 GiB RIFF limit."""
        return (MAX_DATA_BYTES - self._data_bytes) // (self.channels * SAMPLE_WIDTH)

    def append(self, block: bytes | memoryview) -> None:
        """Write whole interleaved sample frames after the previous ones.

        Raises:
            ValueError: a partial sample frame, or more than the RIFF limit allows.
        """
        size = len(block)
        if size % (self.channels * SAMPLE_WIDTH):
            raise ValueError(f"block of {size} bytes is not whole {self.channels}-channel frames")
        if self._data_bytes + size > MAX_DATA_BYTES:
            raise ValueError("WAV data would exceed the 4 GiB RIFF limit")
        self._file.write(block)
        self._data_bytes += size

    def fix_header(self) -> None:
        """Write the current sizes into the header and flush, so the file is valid as is."""
        end = self._file.tell()
        self._file.seek(_RIFF_SIZE_AT)
        self._file.write(struct.pack("<I", HEADER_BYTES - 8 + self._data_bytes))
        self._file.seek(_DATA_SIZE_AT)
        self._file.write(struct.pack("<I", self._data_bytes))
        self._file.seek(end)
        self._file.flush()

    def close(self) -> None:
        """Fix the header up and close the file; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self.fix_header()
        finally:
            self._file.close()
