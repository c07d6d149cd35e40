"""Cut streamed LLM text into sentence-sized chunks for TTS, as the tokens arrive.

A chunk ends at a sentence end (``.``, ``!``, ``?``, ``…`` followed by a space,
with any closing quotes or brackets) or a line break. Not a sentence end: a
decimal point (``1.5``), an abbreviation (``Mr.``, ``Dr.``, ``e.g.``, ``a.m.``),
an initial (``J. Smith``) or a list number at the start of a chunk (``1. ``).
A clause that runs past ``clause_chars`` is cut at its next comma, semicolon,
colon or dash, so a long sentence starts playing early; past ``max_chars``
it is cut at a space. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from typing import Final

ABBREVIATIONS: Final = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "approx", "dept",
        "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
        "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    }
)  # fmt: skip
"""Words whose trailing dot does not end a sentence (compared lower-cased)."""

# Punctuation that can end a sentence, then closing quotes/brackets, then a space.
_SENTENCE_END: Final = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n")
_CLAUSE_END: Final = re.compile(r"[,;:](?=\s)|\s[-–—]{1,2}(?=\s)")
_LAST_TOKEN: Final = re.compile(r"(\S+)$")
_DOTTED: Final = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # e.g, i.e, a.m, U.S


def _is_sentence_end(buffer: str, start: int) -> bool:
    """Whether the punctuation at ``buffer[start]`` ends a sentence."""
    if buffer[start] != ".":
        return True
    if start + 1 < len(buffer) and buffer[start + 1] == ".":
        return True  # an ellipsis
    found = _LAST_TOKEN.search(buffer, 0, start)
    if found is None:
        return True
    word = found.group(1).lstrip("\"'“‘([")
    if word.lower() in ABBREVIATIONS or _DOTTED.fullmatch(word):
        return False
    if len(word) == 1 and word.isupper():
        return False  # an initial: "J. Smith"
    return not (word.isdigit() and buffer[: found.start()].strip() == "")  # "1. Go to..."


class SentenceChunker:
    """Accumulates text deltas; hands out chunks as soon as they are complete.

    Args:
        clause_chars: once a chunk is this long, its next clause break ends it.
        max_chars: a chunk with no break at all is cut at a space once this long.
    """

    def __init__(self, clause_chars: int = 60, max_chars: int = 240) -> None:
        if not 0 < clause_chars <= max_chars:
            raise ValueError("need 0 < clause_chars <= max_chars")
        self.clause_chars = clause_chars
        self.max_chars = max_chars
        self._buffer = ""

    def push(self, text: str) -> list[str]:
        """Add a delta; return the chunks it completed (stripped, never empty)."""
        self._buffer += text
        chunks = []
        while (cut := self._cut()) is not None:
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece:
                chunks.append(piece)
        return chunks

    def flush(self) -> list[str]:
        """The rest of the text as a last chunk (the stream ended)."""
        piece, self._buffer = self._buffer.strip(), ""
        return [piece] if piece else []

    def _cut(self) -> int | None:
        buffer = self._buffer
        for match in _SENTENCE_END.finditer(buffer):
            if buffer[: match.start()].strip() and _is_sentence_end(buffer, match.start()):
                return match.end()
        if len(buffer) >= self.clause_chars:
            for match in _CLAUSE_END.finditer(buffer, self.clause_chars - 1):
                return match.end()
        if len(buffer) > self.max_chars:
            space = buffer.rfind(" ", 0, self.max_chars)
            return space if space > 0 else self.max_chars
        return None


def chunk_text(text: str, clause_chars: int = 60, max_chars: int = 240) -> list[str]:
    """A whole text (a greeting, a goodbye) cut the same way as a stream."""
    chunker = SentenceChunker(clause_chars, max_chars)
    return chunker.push(text) + chunker.flush()
