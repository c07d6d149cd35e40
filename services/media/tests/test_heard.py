"""What the caller heard: whole chunks played, then the proportional words of the current one."""

from __future__ import annotations

import math

import pytest

from voicebus.media.heard import (
    SpokenChunk,
    join_texts,
    leading_words,
    text_heard,
    text_planned,
)

pytestmark = pytest.mark.unit

CHUNKS = [
    SpokenChunk("Your order 1234 shipped yesterday.", 2000),  # 5 words, 0-2000 ms
    SpokenChunk("It arrives on Monday.", 1000),  # 4 words, 2000-3000 ms
    SpokenChunk("Anything else?", 800),  # 2 words, 3000-3800 ms
]


@pytest.mark.parametrize(
    ("played_ms", "heard"),
    [
        (0, ""),
        (399, ""),  # 5 words × 0.1995 → 0 whole words
        (400, "Your"),  # exactly one word's share
        (1200, "Your order 1234"),  # 60 % of 5 words
        (1999, "Your order 1234 shipped"),
        (2000, "Your order 1234 shipped yesterday."),  # first chunk fully played
        (2500, "Your order 1234 shipped yesterday. It arrives"),  # half of 4 words
        (2999, "Your order 1234 shipped yesterday. It arrives on"),
        (3000, "Your order 1234 shipped yesterday. It arrives on Monday."),
        (3400, "Your order 1234 shipped yesterday. It arrives on Monday. Anything"),
        (3800, "Your order 1234 shipped yesterday. It arrives on Monday. Anything else?"),
        (99_999, "Your order 1234 shipped yesterday. It arrives on Monday. Anything else?"),
    ],
)
def test_heard_is_whole_chunks_then_proportional_words(played_ms: int, heard: str) -> None:
    assert text_heard(CHUNKS, played_ms) == heard


def test_planned_is_every_chunk() -> None:
    assert text_planned(CHUNKS) == (
        "Your order 1234 shipped yesterday. It arrives on Monday. Anything else?"
    )


def test_nothing_heard_of_no_chunks_or_negative_playback() -> None:
    assert text_heard([], 5000) == ""
    assert text_heard(CHUNKS, -10) == ""
    assert text_planned([]) == ""


def test_a_chunk_without_audio_is_never_heard_and_takes_no_time() -> None:
    chunks = [
        SpokenChunk("First.", 500),
        SpokenChunk("This failed to synthesize.", 0),
        SpokenChunk("Second one here.", 600),
    ]
    assert text_heard(chunks, 500) == "First."
    assert text_heard(chunks, 800) == "First. Second"  # 300/600 of 3 words
    assert text_heard(chunks, 1100) == "First. Second one here."
    assert text_planned(chunks) == "First. This failed to synthesize. Second one here."


def test_empty_chunks_and_whitespace_are_joined_cleanly() -> None:
    chunks = [SpokenChunk("  Hello there. ", 500), SpokenChunk("", 0), SpokenChunk("Bye.", 300)]
    assert text_heard(chunks, 10_000) == "Hello there. Bye."
    assert text_planned(chunks) == "Hello there. Bye."
    assert join_texts(["", " a ", "b", "  "]) == "a b"


def test_the_final_chunk_with_empty_text_changes_nothing() -> None:
    chunks = [SpokenChunk("Goodbye.", 700), SpokenChunk("", 20)]
    assert text_heard(chunks, 700) == "Goodbye."
    assert text_heard(chunks, 720) == "Goodbye."


@pytest.mark.parametrize(
    ("fraction", "words"),
    [(0.0, ""), (-1.0, ""), (math.nan, ""), (0.34, "a"), (0.67, "a b"), (0.999, "a b"),
     (1.0, "a b c"), (7.0, "a b c")],
)  # fmt: skip
def test_leading_words_rounds_down_and_clamps(fraction: float, words: str) -> None:
    assert leading_words("a b c", fraction) == words


def test_leading_words_of_blank_text() -> None:
    assert leading_words("   ", 1.0) == ""


def test_heard_grows_with_playback() -> None:
    heard = [text_heard(CHUNKS, ms) for ms in range(0, 4000, 10)]
    lengths = [len(h.split()) for h in heard]
    assert lengths == sorted(lengths)  # never shrinks as more plays
    assert all(h == " ".join(heard[-1].split()[: len(h.split())]) for h in heard)  # prefixes


def test_word_timings_cut_what_was_heard_at_a_word() -> None:
    # Proportions say 2 of 4 words after 500 of 1000 ms; the timings say the long first
    # word ends at 600 ms: nothing was heard whole before that.
    timed = SpokenChunk("Supercalifragilistic is quite long", 1000.0, (600.0, 700.0, 850.0, 1000.0))
    assert text_heard([timed], 500) == ""
    assert text_heard([timed], 650) == "Supercalifragilistic"
    assert text_heard([timed], 860) == "Supercalifragilistic is quite"
    untimed = SpokenChunk("Supercalifragilistic is quite long", 1000.0)
    assert text_heard([untimed], 500) == "Supercalifragilistic is"
