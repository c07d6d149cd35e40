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


class WavWriter:
    """Appends interleaved PCM16LE frames to a seekable binary file.

    Args:
        file: an empty, seekable file opened for writing; closed by :meth:`close`.
        sample_rate: samples per second per channel.
        channels: interleaved channels in every appended block.
    """

    def __init__(self, file: BinaryIO, sample_rate: int, channels: int) -> None:
        self._file = file
        self.sample_rate = sample_rate
        self.channels = channels
        self._data_bytes = 0
        self._closed = False
        file.write(wav_header(sample_rate, channels, 0))

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
