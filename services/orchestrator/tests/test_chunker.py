"""Sentence chunking of streamed LLM text."""

from __future__ import annotations

import re

import pytest

from voicebus.orchestrator.chunker import SentenceChunker, chunk_text

pytestmark = pytest.mark.unit


def _stream(text: str, chunker: SentenceChunker | None = None) -> list[str]:
    """Feed ``text`` as word deltas, the way a model streams it."""
    chunker = chunker or SentenceChunker()
    out: list[str] = []
    for delta in re.findall(r"\s*\S+", text):
        out.extend(chunker.push(delta))
    return out + chunker.flush()


def test_sentences_come_out_as_soon_as_the_next_word_starts() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Your order") == []
    assert chunker.push(" shipped.") == []  # a dot at the very end may be "1." of "1.5"
    assert chunker.push(" It") == ["Your order shipped."]
    assert chunker.push(" arrives Monday!") == []
    assert chunker.flush() == ["It arrives Monday!"]
    assert chunker.flush() == []


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("It costs 1.5 dollars. Thanks.", ["It costs 1.5 dollars.", "Thanks."]),
        ("Mr. Smith called. Dr. Who too.", ["Mr. Smith called.", "Dr. Who too."]),
        (
            "Bring an ID, e.g. a passport. Then wait.",
            ["Bring an ID, e.g. a passport.", "Then wait."],
        ),
        ("We open at 9 a.m. on Monday. Bye.", ["We open at 9 a.m. on Monday.", "Bye."]),
        ("Ask J. Smith. He knows.", ["Ask J. Smith.", "He knows."]),
        ("Really? Yes! Fine.", ["Really?", "Yes!", "Fine."]),
        ('He said "done." Then left.', ['He said "done."', "Then left."]),
        ("Wait... what?", ["Wait...", "what?"]),
        ("1. Open the app. 2. Tap orders.", ["1. Open the app.", "2. Tap orders."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ("Order 1234. It shipped.", ["Order 1234.", "It shipped."]),
    ],
)
def test_where_sentences_end_and_where_they_do_not(text: str, chunks: list[str]) -> None:
    assert _stream(text) == chunks
    assert chunk_text(text) == chunks


def test_a_long_clause_is_cut_at_its_next_comma_after_n_chars() -> None:
    text = (
        "Well, I looked at your account and your order from last week, "
        "the one with the blue shoes, is on its way to you"
    )
    chunks = _stream(text, SentenceChunker(clause_chars=40))
    # The first comma comes before 40 characters: no cut there.
    assert chunks[0] == "Well, I looked at your account and your order from last week,"
    assert chunks[1] == "the one with the blue shoes, is on its way to you"
    assert " ".join(chunks) == text


def test_text_without_any_break_is_cut_at_a_space_past_max_chars() -> None:
    text = " ".join(["word"] * 40)  # 199 characters, no punctuation
    chunks = _stream(text, SentenceChunker(clause_chars=20, max_chars=50))
    assert all(len(c) <= 50 for c in chunks)
    assert len(chunks) >= 4
    assert " ".join(chunks) == text


def test_whitespace_and_empty_input_give_no_chunks() -> None:
    chunker = SentenceChunker()
    assert chunker.push("   ") == []
    assert chunker.push("\n\n") == []
    assert chunker.flush() == []
    assert chunk_text("") == []


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="clause_chars"):
        SentenceChunker(clause_chars=100, max_chars=50)
