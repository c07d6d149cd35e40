"""A lexical index over one knowledge base's chunks: BM25 (``bm25s``), offline, no model.

Words are stemmed (Snowball, English), so "refund" finds "Refunds".

Built from the chunks in memory (milliseconds for thousands of chunks) and rebuilt only
when the knowledge base's revision changes (:mod:`.knowledge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import bm25s
import snowballstemmer

from voicebus.orchestrator.kb_chunks import Chunk

_STOPWORDS: Final = "en"
_STEMMER: Final = snowballstemmer.stemmer("english")


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found and its BM25 score (higher is closer; always above zero)."""

    chunk: Chunk
    score: float


class LexicalIndex:
    """BM25 over ``chunks`` (heading and text of each).

    Args:
        chunks: the knowledge base's chunks.
    """

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self._chunks = list(chunks)
        self._bm25: bm25s.BM25 | None = None
        if self._chunks:
            corpus = [c.searchable() for c in self._chunks]
            tokens = bm25s.tokenize(
                corpus, stopwords=_STOPWORDS, stemmer=_STEMMER, show_progress=False
            )
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, k: int) -> list[Hit]:
        """The best ``k`` chunks that share a word with ``query``, best first."""
        if self._bm25 is None or not query.strip():
            return []
        tokens = bm25s.tokenize(
            [query], stopwords=_STOPWORDS, stemmer=_STEMMER, show_progress=False
        )
        if not any(tokens.ids):
            return []
        found, scores = self._bm25.retrieve(
            tokens, k=min(k, len(self._chunks)), show_progress=False, n_threads=1
        )
        return [
            Hit(self._chunks[int(i)], float(s))
            for i, s in zip(found[0], scores[0], strict=True)
            if s > 0
        ]
