"""What the caller heard of an agent utterance, from its chunks and the playback marks.

Pure: values in, text out. An utterance is spoken as sentence-sized chunks, each
synthesized to some amount of audio; the provider's playback marks say how many
milliseconds of the utterance's audio have played. The caller heard every chunk
whose audio has fully played, plus the words of the chunk being played in
proportion to how much of its audio has played (rounded down: a word only counts
once its share of the audio has fully played) or, when the TTS engine gave word
timings, exactly the words whose audio has fully played.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpokenChunk:
    """One chunk of an utterance and the audio synthesized for it.

    Attributes:
        text: the chunk's text as the orchestrator sent it.
        audio_ms: milliseconds of audio synthesized for it (0 when synthesis produced nothing).
        word_ends_ms: when each word's audio ends, from the chunk's start, when the
            engine gave timings (empty otherwise).
    """

    text: str
    audio_ms: float
    word_ends_ms: tuple[float, ...] = ()


def join_texts(texts: Sequence[str]) -> str:
    """Chunk texts joined the way the orchestrator joins them: stripped, one space apart."""
    return " ".join(t for t in (text.strip() for text in texts) if t)


def text_planned(chunks: Sequence[SpokenChunk]) -> str:
    """Everything the agent meant to say."""
    return join_texts([chunk.text for chunk in chunks])


def leading_words(text: str, fraction: float) -> str:
    """The first ``floor(words × fraction)`` words of ``text`` (fraction clamped to [0, 1])."""
    words = text.split()
    if not words or not fraction > 0:  # also rejects NaN
        return ""
    count = len(words) if fraction >= 1 else math.floor(len(words) * fraction)
    return " ".join(words[:count])


def text_heard(chunks: Sequence[SpokenChunk], played_ms: float) -> str:
    """The text whose audio the caller heard after ``played_ms`` of the utterance played.

    Args:
        chunks: the utterance's chunks in playing order, with their audio durations.
        played_ms: audio of the utterance confirmed played (the last playback mark).

    Returns:
        Fully played chunks, then the proportional leading words of the chunk being
        played. A chunk with no audio was never spoken, so it is never heard.
    """
    heard: list[str] = []
    start = 0.0
    for chunk in chunks:
        if chunk.audio_ms <= 0:
            continue
        end = start + chunk.audio_ms
        if played_ms >= end:
            heard.append(chunk.text)
        elif chunk.word_ends_ms:
            count = sum(1 for word_end in chunk.word_ends_ms if word_end <= played_ms - start)
            heard.append(" ".join(chunk.text.split()[:count]))
            break
        else:
            heard.append(leading_words(chunk.text, (played_ms - start) / chunk.audio_ms))
            break
        start = end
    return join_texts(heard)
