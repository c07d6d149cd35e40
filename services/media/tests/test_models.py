"""pipecat's analyzers over shared sessions behave exactly like pipecat's own."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from media_kit import silence
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from prometheus_client import REGISTRY

from voicebus.contracts.rpc import TurnSettings
from voicebus.media.batched_vad import BatchedSileroVADAnalyzer
from voicebus.media.models import (
    MODEL_SHA256,
    ModelIntegrityError,
    SharedModels,
    smart_turn_on,
    verify_model,
)


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


pytestmark = pytest.mark.component

PARAMS = VADParams(stop_secs=0.3)


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]


async def states(analyzer: SileroVADAnalyzer, pcm: bytes) -> list[VADState]:
    analyzer.set_sample_rate(8000)
    return [await analyzer.analyze_audio(f) for f in frames(pcm)]


@pytest.fixture(scope="module")
def inline_models() -> SharedModels:
    """Models scoring each call's windows alone (no batching)."""
    shared = SharedModels(vad_batch_wait_ms=0)
    asyncio.run(shared.load(smart_turn=False))
    return shared


def dialogue(speech: dict[str, bytes]) -> bytes:
    return silence(3000) + speech["order"] + silence(800) + speech["thanks"] + silence(2500)


async def stock_states(pcm: bytes) -> list[VADState]:
    stock = SileroVADAnalyzer(params=PARAMS)
    try:
        return await states(stock, pcm)
    finally:
        await stock.cleanup()


@pytest.mark.parametrize("batched", [True, False])
async def test_shared_analyzers_match_pipecats_own(
    models: SharedModels, inline_models: SharedModels, speech: dict[str, bytes], batched: bool
) -> None:
    pcm = dialogue(speech)
    expected = await stock_states(pcm)
    analyzer = (models if batched else inline_models).vad(PARAMS)
    assert isinstance(analyzer, BatchedSileroVADAnalyzer) is batched
    ours = await states(analyzer, pcm)
    assert ours == expected
    starts = sum(1 for a, b in itertools.pairwise(ours)
                 if a != VADState.SPEAKING and b == VADState.SPEAKING)  # fmt: skip
    assert starts >= 2  # it did hear both lines


async def test_concurrent_calls_batched_together_get_pipecats_answers(
    models: SharedModels, speech: dict[str, bytes]
) -> None:
    lines = [dialogue(speech), silence(700) + dialogue(speech), speech["thanks"] + silence(9000)]
    expected = [await stock_states(pcm) for pcm in lines]
    runs_before = metric("voicebus_media_vad_batch_windows_count")
    windows_before = metric("voicebus_media_vad_batch_windows_sum")
    ours = await asyncio.gather(*(states(models.vad(PARAMS), pcm) for pcm in lines))
    assert ours == expected
    runs = metric("voicebus_media_vad_batch_windows_count") - runs_before
    windows = metric("voicebus_media_vad_batch_windows_sum") - windows_before
    assert windows / runs > 2  # the three calls' windows did share runs


async def test_calls_sharing_the_session_keep_their_own_state(
    models: SharedModels, speech: dict[str, bytes]
) -> None:
    speaking, quiet = models.vad(PARAMS), models.vad(PARAMS)
    for analyzer in (speaking, quiet):
        analyzer.set_sample_rate(8000)
    loud, hush = frames(speech["order"]), frames(silence(len(speech["order"]) // 16))
    seen_speaking, seen_quiet = set(), set()
    for a, b in zip(loud, hush, strict=True):  # interleaved, as calls are
        seen_speaking.add(await speaking.analyze_audio(a))
        seen_quiet.add(await quiet.analyze_audio(b))
    assert VADState.SPEAKING in seen_speaking
    assert seen_quiet == {VADState.QUIET}


async def test_shared_smart_turn_analyzer_decides_on_a_turn(
    models: SharedModels, speech: dict[str, bytes]
) -> None:
    analyzer = models.smart_turn(SmartTurnParams(stop_secs=3.0))
    analyzer.set_sample_rate(8000)
    for f in frames(speech["thanks"]):
        analyzer.append_audio(f, is_speech=True)
    for f in frames(silence(200)):
        analyzer.append_audio(f, is_speech=False)
    state, metrics = await analyzer.analyze_end_of_turn()
    assert state in (EndOfTurnState.COMPLETE, EndOfTurnState.INCOMPLETE)
    assert metrics is not None  # the model ran
    await analyzer.cleanup()
    again = models.smart_turn(SmartTurnParams())  # the shared thread survives a call's cleanup
    again.set_sample_rate(8000)
    again.append_audio(frames(speech["thanks"])[0], is_speech=True)
    _state, metrics = await again.analyze_end_of_turn()
    assert metrics is not None


def test_analyzers_need_the_models_loaded() -> None:
    fresh = SharedModels()
    with pytest.raises(RuntimeError, match="load"):
        fresh.vad(PARAMS)
    with pytest.raises(RuntimeError, match="load"):
        fresh.smart_turn(SmartTurnParams())


@pytest.mark.unit
def test_a_model_file_that_is_not_the_tested_one_is_refused(tmp_path: Path) -> None:
    model = tmp_path / "silero_vad.onnx"
    model.write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError, match=r"silero_vad\.onnx has sha256"):
        verify_model(str(model), MODEL_SHA256["silero_vad.onnx"])
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        verify_model(str(tmp_path / "missing.onnx"), MODEL_SHA256["silero_vad.onnx"])


@pytest.mark.unit
def test_smart_turn_is_on_by_default_for_local_stt_only() -> None:
    assert smart_turn_on(TurnSettings(), "whisper-local")
    assert not smart_turn_on(TurnSettings(), "deepgram")
    assert not smart_turn_on(TurnSettings(smart_turn=False), "whisper-local")
    assert smart_turn_on(TurnSettings(smart_turn=True), "deepgram")
