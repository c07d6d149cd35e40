"""The audio frame codec: raw PCM bytes plus headers."""

from __future__ import annotations

import pytest

from voicebus.contracts import InvalidAudioFrameError, subjects
from voicebus.contracts.audio import (
    AudioFrame,
    PlaybackMark,
    decode_frame,
    decode_mark,
    encode_headers,
    frame_bytes,
)

pytestmark = pytest.mark.unit


def test_round_trip() -> None:
    pcm = bytes(range(256)) + bytes(64)
    frame = AudioFrame(pcm=pcm, sample_rate=8000, seq=7, ts_ms=140, utterance_id="a1", last=True)
    back = decode_frame(pcm, frame.headers())
    assert back == frame
    assert back.duration_ms == 20.0
    assert frame_bytes(8000) == 320
    assert frame_bytes(16000, 20) == 640


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (None, "no headers"),
        ({"VB-Seq": "1", "VB-Ts": "0"}, "VB-Rate is missing"),
        ({"VB-Rate": "8000", "VB-Seq": "x", "VB-Ts": "0"}, "VB-Seq is not an integer"),
        ({"VB-Rate": "11025", "VB-Seq": "1", "VB-Ts": "0"}, "unsupported sample rate"),
        ({"VB-Rate": "8000", "VB-Seq": "-1", "VB-Ts": "0"}, "negative"),
    ],
)
def test_bad_headers_are_clear_errors(headers: dict[str, str] | None, message: str) -> None:
    with pytest.raises(InvalidAudioFrameError, match=message):
        decode_frame(bytes(320), headers)


def test_bad_payloads() -> None:
    headers = encode_headers(8000, 0, 0)
    with pytest.raises(InvalidAudioFrameError, match="odd byte count"):
        decode_frame(bytes(321), headers)
    with pytest.raises(InvalidAudioFrameError, match="too long"):
        decode_frame(bytes(200_000), headers)


def test_playback_mark_round_trip_and_errors() -> None:
    mark = PlaybackMark(utterance_id="a1", seq=41, played_ms=820)
    assert decode_mark(mark.headers()) == mark
    assert subjects.audio_played("c1") == "vb.audio.c1.played"
    with pytest.raises(InvalidAudioFrameError, match="VB-Utt"):
        decode_mark({"VB-Seq": "1", "VB-Played-Ms": "20"})
    with pytest.raises(InvalidAudioFrameError, match="VB-Played-Ms"):
        decode_mark({"VB-Utt": "a1", "VB-Seq": "1"})
