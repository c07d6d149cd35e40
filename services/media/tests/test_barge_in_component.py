"""The false-interruption guard in a call's pipeline (fake engines, real Silero VAD).

The caller's "words" come from :class:`FakeSTT`; the sound that makes the VAD
fire is a piece of a synthesized line. The agent speaks 20 words of 100 ms
(100 frames); frames are counted, never timed against a deadline.
"""

from __future__ import annotations

import pytest
from fakes import FakeSTT, FakeTTS, RecordingOutlet
from media_kit import Harness, frames_of, until

from voicebus.contracts.commands import SayData
from voicebus.contracts.rpc import TurnSettings
from voicebus.media.pipeline import CallPipeline

pytestmark = pytest.mark.component

WORDS = " ".join(f"w{i}" for i in range(20))  # 2,000 ms of agent speech, 100 frames


async def speak_over_agent(pipeline: CallPipeline, out: RecordingOutlet, caller: bytes) -> None:
    await pipeline.say(SayData(utterance_id="a1", seq=0, text=WORDS, final=True))
    await until(lambda: len(out.frames) >= 15)
    for frame in frames_of(caller, start_ts=10_000):
        await pipeline.audio(frame)


def assert_whole_utterance_sent_once(out: RecordingOutlet) -> None:
    frames = [f.frame for f in out.frames]
    assert [f.seq for f in frames] == list(range(100))  # every frame, once, in order
    assert [f.last for f in frames] == [False] * 99 + [True]
    assert out.clears == []
    assert out.of("agent.speech.interrupted") == []


def sent_during(out: RecordingOutlet, start: float, end: float) -> int:
    return sum(start <= f.at <= end for f in out.frames)


@pytest.mark.parametrize("smart_turn", [False, True])
async def test_a_blip_without_words_pauses_the_agent_which_resumes_where_it_stopped(
    harness: Harness, speech: dict[str, bytes], smart_turn: bool
) -> None:
    out = RecordingOutlet()
    stt = FakeSTT([""], delay_s=0.5)  # the sound held no words (a cough)
    turn = TurnSettings(smart_turn=smart_turn)
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(ms_per_word=100), turn=turn)
    await speak_over_agent(pipeline, out, speech["order"][: 16 * 1200] + bytes(16 * 2500))
    await until(lambda: any(f.frame.last for f in out.frames), timeout=15)
    assert_whole_utterance_sent_once(out)
    # Paused while the caller's turn was transcribed: nothing left in those 500 ms.
    ((stt_start, stt_end),) = stt.busy_between
    assert sent_during(out, stt_start, stt_end) == 0
    assert sent_during(out, stt_end, out.frames[-1].at) > 0
    assert out.of("transcript.final") == []
    assert out.types().count("speech.user.started") == 1
    # The held turn ended soon after the sound (the model's 2 s were not waited for):
    # at most pre-roll + sound + VAD stop + the quick stop of silence reached the STT.
    ((segment, _rate),) = stt.segments
    assert len(segment) <= 16 * (600 + 1200 + 300 + 300 + 100)


async def test_a_backchannel_never_interrupts_and_is_marked(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    stt = FakeSTT(["Mm-hmm."], delay_s=0.3)
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(ms_per_word=100))
    await speak_over_agent(pipeline, out, speech["order"][: 16 * 1200] + bytes(16 * 600))
    await until(lambda: any(f.frame.last for f in out.frames), timeout=15)
    assert_whole_utterance_sent_once(out)
    final = out.of("transcript.final")
    assert [(f.data.text, f.data.backchannel) for f in final] == [("Mm-hmm.", True)]  # type: ignore[attr-defined]


async def test_real_words_cut_the_agent_before_their_transcript_is_published(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    stt = FakeSTT(["Wait, that is not my order."], delay_s=0.3)
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(ms_per_word=100))
    await speak_over_agent(pipeline, out, speech["order"] + bytes(16 * 600))
    await until(lambda: bool(out.of("transcript.final")))
    types = out.types()
    assert types.index("agent.speech.interrupted") < types.index("transcript.final")
    assert out.of("transcript.final")[0].data.backchannel is False  # type: ignore[attr-defined]
    assert [c[0] for c in out.clears] == ["a1"]
    assert not any(f.frame.last for f in out.frames)
    ((_, stt_end),) = stt.busy_between
    assert sent_during(out, stt_end, float("inf")) == 0  # held, then cut: never resumed


async def test_one_short_word_is_too_little_but_long_speech_with_one_word_interrupts(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    turn = TurnSettings(interruption_min_words=3, interruption_min_speech_ms=5000)
    stt = FakeSTT(["No."], delay_s=0.1)
    pipeline = await harness.start(out, stt=stt, tts=FakeTTS(ms_per_word=100), turn=turn)
    await speak_over_agent(pipeline, out, speech["order"][: 16 * 1200] + bytes(16 * 600))
    await until(lambda: any(f.frame.last for f in out.frames), timeout=15)
    assert_whole_utterance_sent_once(out)
    assert out.of("transcript.final")[0].data.backchannel is True  # type: ignore[attr-defined]

    out2 = RecordingOutlet()
    turn2 = TurnSettings(interruption_min_words=3, interruption_min_speech_ms=300)
    stt2 = FakeSTT(["No."], delay_s=0.1)
    pipeline2 = await harness.start(out2, stt=stt2, tts=FakeTTS(ms_per_word=100), turn=turn2,
                                    call_id="c2")  # fmt: skip
    await speak_over_agent(pipeline2, out2, speech["order"][: 16 * 1200] + bytes(16 * 600))
    await until(lambda: bool(out2.of("agent.speech.interrupted")))
    assert out2.of("transcript.final")[0].data.backchannel is False  # type: ignore[attr-defined]


async def test_without_a_transcript_the_agent_resumes_after_the_hold_timeout(
    harness: Harness, speech: dict[str, bytes]
) -> None:
    out = RecordingOutlet()
    pipeline = await harness.start(out, stt=None, tts=FakeTTS(ms_per_word=100))
    await speak_over_agent(pipeline, out, speech["order"][: 16 * 1200] + bytes(16 * 600))
    await until(lambda: any(f.frame.last for f in out.frames), timeout=15)
    assert_whole_utterance_sent_once(out)
