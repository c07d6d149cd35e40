"""Typed reading of an engine's options, with clear errors for wrong or unknown keys.

Options come from agent files (``EngineChoice.options``: scalars only). A typo in a
key must fail when the engine is created, not be silently ignored for a whole call.
"""

from __future__ import annotations

from typing import Any

from voicebus.engines.base import EngineError, Options


class OptionReader:
    """Reads options one key at a time; :meth:`finish` rejects any key nobody read.

    Args:
        engine: The engine's registered name, for error messages.
        options: The options as given.
    """

    def __init__(self, engine: str, options: Options) -> None:
        self._engine = engine
        self._options = dict(options)
        self._read: set[str] = set()

    def _get(self, key: str) -> Any:
        self._read.add(key)
        return self._options.get(key)

    def _wrong(self, key: str, expected: str) -> EngineError:
        return EngineError(f"{self._engine}: option {key!r} must be {expected}")

    def text(self, key: str, default: str) -> str:
        """A string option."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        """A string option with no default."""
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        """An integer option within ``[low, high]``."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._wrong(key, f"an integer from {low} to {high}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        """A number option within ``[low, high]``."""
        value = self._get(key)
        if value is None:
            return default
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not low <= value <= high:
            raise self._wrong(key, f"a number from {low} to {high}")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        """A boolean option."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def finish(self) -> None:
        """Raise if an option was given that this engine does not know.

        Raises:
            EngineError: naming the unknown keys.
        """
        unknown = sorted(set(self._options) - self._read)
        if unknown:
            known = ", ".join(sorted(self._read)) or "none"
            raise EngineError(
                f"{self._engine}: unknown option(s) {', '.join(unknown)}; known: {known}"
            )
