"""Cutting an uploaded contact file into whole-line chunks. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

CHUNK_BYTES: Final = 384 * 1024
"""Raw bytes per chunk: base64 (4/3) plus the envelope stay under NATS' 1 MiB payload."""


class LineTooLongError(ValueError):
    """One line of the file is longer than a chunk."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(f"line {line} is longer than {CHUNK_BYTES} bytes")


def line_chunks(body: bytes, max_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(first line number, whole lines)`` pieces of ``body``, each at most ``max_bytes``.

    Raises:
        LineTooLongError: a single line does not fit in a chunk.
    """
    start, line = 0, 1
    size = len(body)
    while start < size:
        end = min(start + max_bytes, size)
        if end < size:
            cut = body.rfind(b"\n", start, end)
            if cut < 0:
                raise LineTooLongError(line)
            end = cut + 1
        piece = body[start:end]
        yield line, piece
        line += piece.count(b"\n")
        start = end
