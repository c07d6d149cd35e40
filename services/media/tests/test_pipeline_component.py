"""One call's pipeline with fake engines and a recording outlet: turns, speech out, barge-in."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from fakes import FakeSTT, FakeTTS, RecordingOutlet
from media_kit import Harness, frames_of, silence, until

from voicebus.contracts.audio import PlaybackMark
from voicebus.contracts.commands import SayData
from voicebus.contracts.rpc import TurnSettings
from voicebus.media.pipeline import CallPipeline

pytestmark = pytest.mark.component


async def feed(pipeline: CallPipeline, pcm: bytes, *, start_ts: int = 0) -> None:
    """Caller audio, as fast as the pipeline takes it."""
    for frame in frames_of(pcm, start_ts=start_ts):
        await pipeline.audio(frame)


async def say(pipeline: CallPipeline, utt: str, *chunks: str, allow: bool = True) -> None:
    for seq, text in enumerate(chunks):
        data = SayData(utterance_id=utt, seq=seq, text=text, final=seq == len(chunks) - 1,
                       allow_interruptions=allow)  # fmt: skip
        await pipeline.say(data)


async def test_caller_turns_become_started_stopped_final_in_order(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    stt = FakeSTT(["where is my order", "thanks"])
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS())
    first_at = 500
    second_at = first_at + len(speech["order"]) // 16 + 1000
    await feed(pipeline, silence(first_at) + speech["order"] + silence(1000) + speech["thanks"]
               + silence(1000))  # fmt: skip
    await until(lambda: len(out.of("transcript.final")) == 2)
    await asyncio.sleep(0.2)
    per_turn = [e.event_name for e in out.events]
    assert per_turn.count("speech.user.started") == 2
    assert per_turn.count("speech.user.stopped") == 2
    starts, stops = out.of("speech.user.started"), out.of("speech.user.stopped")
    finals = out.of("transcript.final")
    for start, stop, final in zip(starts, stops, finals, strict=True):
        assert out.events.index(start) < out.events.index(stop) < out.events.index(final)
        assert final.data.start_ms == start.data.at_ms  # type: ignore[attr-defined]
        assert final.data.end_ms == stop.data.at_ms  # type: ignore[attr-defined]
        assert stop.data.at_ms > start.data.at_ms  # type: ignore[attr-defined]
    assert [f.data.text for f in finals] == ["where is my order", "thanks"]  # type: ignore[attr-defined]
    # Onsets on the media timeline, within the synthesized lines' own leading silence.
    assert first_at <= starts[0].data.at_ms <= first_at + 800  # type: ignore[attr-defined]
    assert second_at <= starts[1].data.at_ms <= second_at + 800  # type: ignore[attr-defined]
    assert all(e.call_id == "c1" and e.tenant_id == "acme" for e in out.events)
    # STT heard each whole turn: at least the line itself, at most line + pre-roll + stop.
    for (pcm, rate), line in zip(stt.segments, ("order", "thanks"), strict=True):
        assert rate == 8000
        assert len(pcm) >= len(speech[line]) * 0.6
        assert len(pcm) <= len(speech[line]) + 16 * 1200


async def test_silence_and_blips_are_no_turn(harness: Harness, speech: dict[str, bytes]) -> None:
    out = RecordingOutlet()
    stt = FakeSTT(["never"])
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(),
                                   turn=TurnSettings(min_speech_ms=400))  # fmt: skip
    onset = 8000 * 2 * 6 // 10  # where the line's voice starts (after its leading silence)
    blip = speech["order"][onset : onset + 16 * 150]  # 150 ms of voice: shorter than min_speech
    await feed(pipeline, silence(2000) + blip + silence(2000) + blip + silence(1000))
    await asyncio.sleep(0.3)
    assert out.events == []
    assert stt.segments == []


async def test_a_say_is_sent_as_paced_sequenced_frames(harness: Harness) -> None:
    out = RecordingOutlet()
    tts = FakeTTS(ms_per_word=130)
    pipeline = await harness.start(out, stt=FakeSTT(), tts=tts, lead_ms=160)
    await say(pipeline, "a1", "Hello there.", "How are you today?", "")  # 6 words: 780 ms
    await until(lambda: any(f.frame.last for f in out.frames))
    frames = [f.frame for f in out.frames]
    assert len(frames) == 39
    assert {len(f.pcm) for f in frames} == {320}
    assert {f.sample_rate for f in frames} == {8000}
    assert [f.seq for f in frames] == list(range(39))
    assert [f.last for f in frames] == [False] * 38 + [True]
    assert {f.utterance_id for f in frames} == {"a1"}
    assert all(b.ts_ms - a.ts_ms >= 20 for a, b in itertools.pairwise(frames))
    # Paced: frame k never leaves before k × 20 ms minus the lead (lower bounds only).
    t0 = out.frames[0].at
    for k, sent in enumerate(out.frames):
        assert sent.at - t0 >= k * 0.020 - 0.160 - 0.021
    assert tts.texts == ["Hello there.", "How are you today?"]
    started = out.of("agent.speech.started")
    assert [(e.data.utterance_id, e.data.text) for e in started] == [("a1", "Hello there.")]  # type: ignore[attr-defined]
    assert out.events.index(started[0]) == 0
    await pipeline.mark(PlaybackMark("a1", 24, 500))  # halfway: nothing yet
    await pipeline.mark(PlaybackMark("a1", 38, 780))
    await until(lambda: bool(out.of("agent.speech.stopped")))
    stopped = out.of("agent.speech.stopped")[0].data
    assert (stopped.utterance_id, stopped.played_ms) == ("a1", 780)  # type: ignore[attr-defined]
    assert stopped.text == "Hello there. How are you today?"  # type: ignore[attr-defined]


async def test_without_marks_speech_stops_after_the_grace(harness: Harness) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, tts=FakeTTS(ms_per_word=100), mark_grace_ms=300)
    await say(pipeline, "a1", "one two three")
    await until(lambda: bool(out.of("agent.speech.stopped")), timeout=5)
    last_sent = out.frames[-1].at
    assert out.frames[-1].frame.last
    assert time.monotonic() - last_sent >= 0.3 - 0.16  # waited for the grace after playback
    assert out.of("agent.speech.stopped")[0].data.played_ms == 300  # type: ignore[attr-defined]


async def test_caller_speech_over_the_agent_clears_and_reports_what_was_heard(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    tts = FakeTTS(ms_per_word=130)
    pipeline = await harness.start(out, stt=FakeSTT(["wait"]), tts=tts)
    # Long enough that the agent still has more to say when the caller's speech is heard.
    more = " ".join(["more"] * 24) + "."
    await say(pipeline, "a1", "one two three four five.", "six seven eight nine.", "ten eleven.",
              more)  # fmt: skip
    await until(lambda: len(out.frames) >= 45)
    # The gateway confirms 45 frames (900 ms): the first chunk (650 ms) and 250 of the
    # second's 520 ms, i.e. one of its four words.
    await pipeline.mark(PlaybackMark("a1", 44, 900))
    # The speech pauses the agent; its words, once the turn ends, cut it.
    await feed(pipeline, speech["order"][: 16 * 1500] + silence(800))
    await until(lambda: bool(out.of("agent.speech.interrupted")))
    cut = out.of("agent.speech.interrupted")[0].data
    assert cut.utterance_id == "a1"  # type: ignore[attr-defined]
    assert cut.text_heard == "one two three four five. six"  # type: ignore[attr-defined]
    planned = "one two three four five. six seven eight nine. ten eleven. " + more
    assert cut.text_planned == planned  # type: ignore[attr-defined]
    assert cut.played_ms == 900  # type: ignore[attr-defined]
    assert [c[0] for c in out.clears] == ["a1"]
    clear_at = out.clears[0][1]
    sent = len(out.frames)
    await asyncio.sleep(0.3)
    assert len(out.frames) == sent  # nothing more of a1 is sent
    assert all(f.at <= clear_at for f in out.frames)
    assert not any(f.frame.last for f in out.frames)
    assert out.of("agent.speech.stopped") == []
    assert out.types().index("speech.user.started") < out.types().index("agent.speech.interrupted")
    # A late chunk of the cut utterance is not spoken; a new utterance is.
    await pipeline.say(SayData(utterance_id="a1", seq=3, text="late words", final=True))
    await say(pipeline, "a2", "Sure.")
    await until(lambda: any(f.frame.utterance_id == "a2" and f.frame.last for f in out.frames))
    assert "late words" not in tts.texts
    assert out.frames[sent].frame.seq == out.frames[sent - 1].frame.seq + 1  # seq runs on


async def test_no_barge_in_when_the_utterance_forbids_it(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, stt=FakeSTT(), tts=FakeTTS(ms_per_word=100))
    await say(pipeline, "a1", "please hear me out to the end", allow=False)
    await until(lambda: len(out.frames) >= 10)
    await feed(pipeline, speech["order"][: 16 * 1500])
    await until(lambda: any(f.frame.last for f in out.frames))
    assert out.clears == []
    assert out.of("agent.speech.interrupted") == []
    assert len(out.frames) == 35  # 7 words × 100 ms, all sent


async def test_no_barge_in_when_the_agent_forbids_it(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    turn = TurnSettings(allow_interruptions=False)
    pipeline = await harness.start(out, stt=FakeSTT(), tts=FakeTTS(ms_per_word=100), turn=turn)
    await say(pipeline, "a1", "please hear me out to the end")
    await until(lambda: len(out.frames) >= 10)
    await feed(pipeline, speech["order"][: 16 * 1500])
    await until(lambda: any(f.frame.last for f in out.frames))
    assert out.clears == []
    assert out.of("agent.speech.interrupted") == []


async def test_a_slow_transcription_does_not_hold_up_another_calls_audio(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    slow_out, other_out = RecordingOutlet(), RecordingOutlet()
    slow_stt = FakeSTT(["slow"], delay_s=1.5)
    slow = await harness.start(slow_out, stt=slow_stt, tts=FakeTTS(), call_id="slow")
    other = await harness.start(other_out, stt=FakeSTT(), tts=FakeTTS(ms_per_word=200),
                                call_id="other")  # fmt: skip
    await say(other, "b1", " ".join(["word"] * 15))  # 3 s of agent audio
    await feed(slow, speech["thanks"] + silence(800))
    await until(lambda: bool(slow_out.of("transcript.final")), timeout=15)
    ((busy_from, busy_to),) = slow_stt.busy_between
    during = [f for f in other_out.frames if busy_from <= f.at <= busy_to]
    assert len(during) >= 10  # the other call's audio kept flowing while STT held a thread


async def test_a_failed_synthesis_is_reported_and_the_call_goes_on(harness: Harness) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, tts=FakeTTS(ms_per_word=100, fail_on=["bad"]))
    await say(pipeline, "a1", "bad")
    await say(pipeline, "a2", "good words")
    await until(lambda: any(f.frame.last for f in out.frames))
    errors = out.of("call.error")
    assert [(e.data.code, e.data.service) for e in errors] == [("engine_error", "media")]  # type: ignore[attr-defined]
    assert {f.frame.utterance_id for f in out.frames} == {"a2"}
    assert len(out.frames) == 10


async def test_without_engines_the_call_still_reports_speech(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, stt=None, tts=None)
    await say(pipeline, "a1", "nobody will hear this")
    await feed(pipeline, silence(300) + speech["thanks"] + silence(1000))
    await until(lambda: bool(out.of("speech.user.stopped")))
    assert out.frames == []
    assert out.of("transcript.final") == []


async def test_smart_turn_ends_a_finished_sentence(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    turn = TurnSettings(smart_turn=True, vad_stop_ms=200)
    pipeline = await harness.start(out, stt=FakeSTT(["thanks"]), tts=FakeTTS(), turn=turn)
    await feed(pipeline, silence(300) + speech["thanks"] + silence(2500))
    await until(lambda: bool(out.of("transcript.final")))
    assert out.types().count("speech.user.started") == 1
    assert out.types().count("speech.user.stopped") == 1


async def test_stopping_leaves_no_task_behind(harness: Harness, speech: dict[str, bytes]) -> None:
    before = {t for t in asyncio.all_tasks() if not t.done()}
    out = RecordingOutlet()
    pipeline = await harness.start(out, stt=FakeSTT(["x"]), tts=FakeTTS())
    await say(pipeline, "a1", "some words to speak now")
    await feed(pipeline, speech["thanks"][: 16 * 1000])
    assert {t for t in asyncio.all_tasks() if not t.done()} - before  # it did run tasks
    await pipeline.stop()
    await pipeline.stop()  # idempotent
    await asyncio.sleep(0.05)
    left = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert left == set(), [t.get_name() for t in left]


async def test_smart_turn_is_asked_early_and_its_answer_ends_the_turn(
    harness: Harness, speech: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicebus.media.models import SharedSmartTurnAnalyzer

    asked: list[object] = []
    original = SharedSmartTurnAnalyzer.predict_now

    async def spy(self: SharedSmartTurnAnalyzer) -> object:
        asked.append(self)
        return await original(self)

    monkeypatch.setattr(SharedSmartTurnAnalyzer, "predict_now", spy)
    out = RecordingOutlet()
    stt = FakeSTT(["thanks that is all i needed"])
    turn = TurnSettings(smart_turn=True, vad_stop_ms=200)
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(), turn=turn)
    await feed(pipeline, silence(500) + speech["thanks"] + silence(3000))
    await until(lambda: bool(out.of("transcript.final")))
    assert asked  # the model was asked before the VAD confirmed the stop
    assert len(out.of("speech.user.stopped")) == 1
