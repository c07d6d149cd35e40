"""The pieces of audio replays and evals that need no stack: the caller channel, the
phone's pacing, the caller's lines, and the latency summary."""

from __future__ import annotations

import asyncio
import io
import json
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from voicebus.cli.audio_evals import UnusableLineError, line_audio, local_voice
from voicebus.cli.audio_replay import caller_channel
from voicebus.cli.phone import Listener
from voicebus.cli.replay import latency_line
from voicebus.cli.scenarios import ScenarioTurn
from voicebus.contracts.replay import TurnRecord, percentile

pytestmark = pytest.mark.unit


def _stereo(left: list[int], right: list[int], rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = [v for pair in zip(left, right, strict=True) for v in pair]
        wav.writeframes(b"".join(v.to_bytes(2, "little", signed=True) for v in frames))
    return out.getvalue()


def test_the_caller_is_the_left_channel() -> None:
    caller = caller_channel(_stereo([1, -2, 300], [7, 7, 7]))
    assert caller.sample_rate == 8000
    assert caller.pcm == b"".join(v.to_bytes(2, "little", signed=True) for v in (1, -2, 300))


def test_a_mono_file_is_refused() -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(4))
    with pytest.raises(ValueError, match="stereo"):
        caller_channel(out.getvalue())


class _Socket:
    def __init__(self) -> None:
        self.sent: list[tuple[float, Any]] = []

    async def send(self, message: str) -> None:
        self.sent.append((time.monotonic(), json.loads(message)))


async def test_marks_are_confirmed_when_the_audio_before_them_has_played() -> None:
    ws = _Socket()
    listener = Listener(ws)  # type: ignore[arg-type]
    began = time.monotonic()
    listener.agent_audio(bytes(2 * 16000 // 5))  # 200 ms of agent audio
    listener.mark("m1")
    listener.agent_audio(bytes(2 * 16000))  # one more second
    listener.mark("m2")
    await asyncio.sleep(0.3)
    assert [m["name"] for _, m in ws.sent] == ["m1"]
    assert ws.sent[0][0] - began >= 0.19
    # The caller barged in: what is left is dropped, the pending mark confirmed at once.
    await listener.clear()
    assert [m["name"] for _, m in ws.sent] == ["m1", "m2"]
    assert listener.marks == {}
    assert listener.quiet_since(time.monotonic() - 5) < 0.1


def test_latencies_sum_up_as_p50_and_p95() -> None:
    assert percentile([], 0.5) is None
    assert percentile([300, 100, 200], 0.5) == 200
    assert percentile(list(range(1, 101)), 0.95) == 95
    turns = [TurnRecord(), TurnRecord(latency_ms=400), TurnRecord(latency_ms=800)]
    assert latency_line(turns) == "p50 400 ms, p95 800 ms over 2"
    assert latency_line([TurnRecord()]) is None


def _mono(path: Path, rate: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(64))
    return path


async def test_a_line_comes_from_its_wav_file_or_the_voice_and_a_bad_one_is_named(
    tmp_path: Path,
) -> None:
    _mono(tmp_path / "hi.wav", 16000)
    _mono(tmp_path / "low.wav", 8000)
    assert await line_audio(ScenarioTurn(say="hi", wav="hi.wav"), tmp_path, None) == bytes(64)
    with pytest.raises(UnusableLineError, match="not a mono 16-bit 16000 Hz WAV"):
        await line_audio(ScenarioTurn(say="hi", wav="low.wav"), tmp_path, None)
    with pytest.raises(UnusableLineError, match=r"missing\.wav"):
        await line_audio(ScenarioTurn(say="hi", wav="missing.wav"), tmp_path, None)
    with pytest.raises(UnusableLineError, match="install voicebus-devkit"):
        await line_audio(ScenarioTurn(say="hi"), tmp_path, None)
    voice = local_voice()  # the dev kit's, installed in this workspace
    assert voice is not None
    spoken = await line_audio(ScenarioTurn(say="hello"), tmp_path, voice)
    assert len(spoken) > 16000  # more than half a second of speech at 16 kHz
