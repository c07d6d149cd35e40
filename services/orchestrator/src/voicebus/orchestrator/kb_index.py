"""A lexical index over one knowledge base's chunks: BM25 (``bm25s``), offline, no model.

Words are stemmed (Snowball, English), so "refund" finds "Refunds". ``bm25s`` and the
stemmer (every Snowball language) are imported on first use, or ahead of it off the event
loop (:func:`warm_up`), never when the orchestrator starts. ``bm25s`` would import numba
whenever it is installed (seconds of import, then a JIT compile on the first search) for
backends this index does not use: it is imported with numba hidden and runs numpy only.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

from voicebus.orchestrator.kb_chunks import Chunk

_STOPWORDS: Final = "en"


@functools.cache
def warm_up() -> tuple[ModuleType, Any]:
    """``bm25s`` and the English stemmer, loaded once (call it in a thread to keep the
    event loop free)."""
    stemmer = importlib.import_module("snowballstemmer").stemmer("english")
    if "numba" in sys.modules or "bm25s" in sys.modules:
        return importlib.import_module("bm25s"), stemmer
    # A None entry makes ``import numba`` raise ImportError: bm25s then keeps to numpy.
    sys.modules["numba"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("bm25s"), stemmer
    finally:
        del sys.modules["numba"]


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
        self._bm25: Any = None
        if self._chunks:
            bm25s, stemmer = warm_up()
            corpus = [c.searchable() for c in self._chunks]
            tokens = bm25s.tokenize(
                corpus, stopwords=_STOPWORDS, stemmer=stemmer, show_progress=False
            )
            self._bm25 = bm25s.BM25(backend="numpy")
            self._bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, k: int) -> list[Hit]:
        """The best ``k`` chunks that share a (stemmed) word with ``query``, best first."""
        if self._bm25 is None or not query.strip():
            return []
        bm25s, stemmer = warm_up()
        tokens = bm25s.tokenize([query], stopwords=_STOPWORDS, stemmer=stemmer, show_progress=False)
        if not any(tokens.ids):
            return []
        found, scores = self._bm25.retrieve(
            tokens, k=min(k, len(self._chunks)), show_progress=False, n_threads=1,
            backend_selection="numpy",
        )  # fmt: skip
        return [
            Hit(self._chunks[int(i)], float(s))
            for i, s in zip(found[0], scores[0], strict=True)
            if s > 0
        ]
