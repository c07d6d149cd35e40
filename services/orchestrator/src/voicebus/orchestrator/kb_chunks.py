"""Cutting document paragraphs into chunks for voice. Pure.

A chunk is what an agent can say in one breath: one to three sentences of one
paragraph (about :data:`MAX_CHARS` characters at most), never across a heading, with
the heading path it sits under carried along, so "14 days" still says it is about
refunds. A sentence longer than a chunk is cut at a word.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from voicebus.orchestrator.kb_documents import Block

MAX_SENTENCES: Final = 3
MAX_CHARS: Final = 400
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]?\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A voice-sized piece of a document.

    Attributes:
        chunk_id: ``<document>.<first 8 hex of the content hash>.<n>``: stable while the
            content is, new when it changes (a citation never points at other text).
        heading: the heading path it sits under.
        text: one to three sentences.
    """

    chunk_id: str
    heading: str
    text: str

    def searchable(self) -> str:
        """What the index sees: the heading, then the text."""
        return f"{self.heading}. {self.text}" if self.heading else self.text


def content_hash(data: bytes) -> str:
    """SHA-256 of a document's bytes, hex: the same hash is the same content."""
    return hashlib.sha256(data).hexdigest()


def sentences(text: str) -> list[str]:
    """The sentences of one paragraph (a run without end punctuation is one sentence)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _cut(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", 0, max_chars)
        cut = cut if cut > 0 else max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


def chunk_blocks(
    blocks: Iterable[Block],
    document_id: str,
    digest: str,
    *,
    max_sentences: int = MAX_SENTENCES,
    max_chars: int = MAX_CHARS,
) -> list[Chunk]:
    """The document's chunks, in order, numbered from 0."""
    texts: list[tuple[str, str]] = []
    for block in blocks:
        group: list[str] = []
        size = 0
        for sentence in (p for s in sentences(block.text) for p in _cut(s, max_chars)):
            if group and (len(group) >= max_sentences or size + 1 + len(sentence) > max_chars):
                texts.append((block.heading, " ".join(group)))
                group, size = [], 0
            group.append(sentence)
            size += len(sentence) + (1 if size else 0)
        if group:
            texts.append((block.heading, " ".join(group)))
    prefix = f"{document_id}.{digest[:8]}"
    return [Chunk(f"{prefix}.{n}", heading, text) for n, (heading, text) in enumerate(texts)]
