"""The incremental WAV writer: headers the stdlib ``wave`` module reads back exactly."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from voicebus.recorder.wav import MAX_DATA_BYTES, WavWriter, wav_header

pytestmark = pytest.mark.unit


class _Keep(io.BytesIO):
    """A BytesIO whose content survives close(), to read the result back."""

    def close(self) -> None:
        self.final = self.getvalue()
        super().close()


def _stereo(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("<hh", left, right) for left, right in pairs)


def test_header_of_an_empty_stereo_file_is_valid() -> None:
    header = wav_header(8000, 2, 0)
    assert len(header) == 44
    with wave.open(io.BytesIO(header)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        assert wav.getnframes() == 0


@pytest.mark.parametrize("size", [-4, 3, MAX_DATA_BYTES + 4])
def test_header_refuses_impossible_sizes(size: int) -> None:
    with pytest.raises(ValueError, match="invalid WAV data size"):
        wav_header(8000, 2, size)


def test_appended_frames_read_back_in_order_and_the_header_follows() -> None:
    file = _Keep()
    writer = WavWriter(file, 16000, channels=2)
    writer.append(_stereo((1, -1), (2, -2)))
    writer.fix_header()  # valid mid-way: a crash now still leaves a readable file
    with wave.open(io.BytesIO(file.getvalue())) as wav:
        assert wav.getnframes() == 2
    writer.append(memoryview(_stereo((3, -3))))
    assert (writer.frames, writer.data_bytes) == (3, 12)
    writer.close()
    writer.close()  # idempotent
    with wave.open(io.BytesIO(file.final)) as wav:
        assert wav.getframerate() == 16000
        assert wav.getnframes() == 3
        assert wav.readframes(3) == _stereo((1, -1), (2, -2), (3, -3))


def test_partial_frames_are_refused() -> None:
    writer = WavWriter(io.BytesIO(), 8000, channels=2)
    with pytest.raises(ValueError, match="not whole"):
        writer.append(b"\x00\x00")
    assert writer.data_bytes == 0
    assert writer.room == MAX_DATA_BYTES // 4
