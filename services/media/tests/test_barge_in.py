"""The false-interruption guard and the backchannel lists: pure decisions."""

from __future__ import annotations

import pytest

from voicebus.media.backchannels import Backchannels, normalize
from voicebus.media.barge_in import Floor, GuardSettings, InterruptionGuard, Verdict

pytestmark = pytest.mark.unit

EN = Backchannels.for_language("en-US")


@pytest.mark.parametrize(
    "text",
    ["Mhm.", "mm-hmm", "Mmm-hmmm!", "Okay.", "Yeah, yeah.", "Right", "uh-huh", "I see.",
     "okay, got it", "(coughs) mhm"],
)  # fmt: skip
def test_english_backchannels_in_the_spellings_engines_use(text: str) -> None:
    assert EN.is_backchannel(text)


@pytest.mark.parametrize(
    ("text", "content"),
    [("Wait, stop.", ["wait", "stop"]), ("Yeah but no", ["but", "no"]), ("", []),
     ("[BLANK_AUDIO]", []), ("Okay, what about my order?", ["what", "about", "my", "order"])],
)  # fmt: skip
def test_content_words_are_what_is_left_after_backchannels(text: str, content: list[str]) -> None:
    assert EN.content_words(text) == [normalize(w)[0] for w in content]
    assert not EN.is_backchannel(text)


def test_languages_have_their_own_lists_and_an_agent_may_bring_its_own() -> None:
    hindi = Backchannels.for_language("hi")
    assert hindi.is_backchannel("हाँ")
    assert hindi.is_backchannel("accha, theek hai")
    assert not hindi.is_backchannel("ruko")
    assert Backchannels.for_language("xx").is_backchannel("okay")  # unknown: English
    own = Backchannels.for_language("en", ["roger"])
    assert own.is_backchannel("Roger.")
    assert not own.is_backchannel("okay")


def guard(min_words: int = 2, min_speech_ms: int = 600) -> InterruptionGuard:
    return InterruptionGuard(GuardSettings(min_words, min_speech_ms, 3.0), EN, Floor())


def test_speech_over_the_agent_pauses_it_and_an_empty_turn_resumes_it() -> None:
    g = guard()
    assert g.speech_started(agent_interruptible=True) is Verdict.PAUSE
    assert g.holding
    assert g.floor.holding
    g.turn_ended(10.0)
    judged = g.transcript("", 300)
    assert (judged.verdict, judged.backchannel) == (Verdict.RESUME, False)
    assert not g.holding


def test_speech_when_the_agent_cannot_be_cut_changes_nothing() -> None:
    g = guard()
    assert g.speech_started(agent_interruptible=False) is Verdict.NONE
    g.turn_ended(1.0)
    assert g.transcript("where is my order", 900).verdict is Verdict.NONE


@pytest.mark.parametrize(
    ("text", "speech_ms", "verdict", "backchannel"),
    [
        ("Mhm.", 400, Verdict.RESUME, True),
        ("Yeah, yeah, okay, right.", 1500, Verdict.RESUME, True),  # long, still backchannel
        ("No.", 300, Verdict.RESUME, True),  # one word, short: too little
        ("Nooo.", 700, Verdict.INTERRUPT, False),  # one word held past the speech threshold
        ("Wait, stop.", 400, Verdict.INTERRUPT, False),  # two words
        ("Okay, what about my order?", 1200, Verdict.INTERRUPT, False),
    ],
)
def test_final_transcripts_over_the_agent(
    text: str, speech_ms: int, verdict: Verdict, backchannel: bool
) -> None:
    g = guard()
    g.speech_started(agent_interruptible=True)
    g.turn_ended(0.0)
    judged = g.transcript(text, speech_ms)
    assert (judged.verdict, judged.backchannel) == (verdict, backchannel)
    assert not g.holding


def test_interim_words_interrupt_before_the_turn_ends() -> None:
    g = guard(min_words=3)
    g.speech_started(agent_interruptible=True)
    assert g.interim("mhm okay") is Verdict.NONE
    assert g.interim("hold on a") is Verdict.INTERRUPT
    assert not g.holding
    assert g.interim("hold on a second") is Verdict.NONE  # already released


def test_resumes_only_once_every_turn_of_the_hold_is_judged_and_the_caller_is_silent() -> None:
    g = guard()
    g.speech_started(agent_interruptible=True)
    g.turn_ended(0.0)
    assert g.speech_started(agent_interruptible=True) is Verdict.NONE  # second "mhm" begins
    assert g.transcript("mhm", 300).verdict is Verdict.NONE  # caller still speaking
    g.turn_ended(0.5)
    assert g.transcript("mhm", 300).verdict is Verdict.RESUME


def test_a_transcript_that_never_comes_resumes_after_the_timeout() -> None:
    g = guard()
    g.speech_started(agent_interruptible=True)
    assert g.deadline() is None  # nothing awaited while the caller speaks
    g.turn_ended(100.0)
    assert g.deadline() == 103.0
    assert g.expired(102.9) is Verdict.NONE
    assert g.expired(103.0) is Verdict.RESUME
    assert not g.holding
    assert g.deadline() is None
