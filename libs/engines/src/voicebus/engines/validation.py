"""Pure validation of an agent's engine choices: the same checks at load and at save.

:func:`validate_choice` builds the engine from its options without a key, a
connection or a model (factories do no I/O), so an unknown engine, model, voice,
language or option fails with a message naming the field, wherever agents are
checked (agent files today, the agents REST API later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from voicebus.engines.base import LLM, STT, TTS, EngineContext, EngineError, Registry

_VALIDATION_KEY: Final = "validation-only"  # a placeholder, never sent anywhere


@dataclass(frozen=True, slots=True)
class ChoiceProblem:
    """What is wrong with one engine choice.

    Attributes:
        field: the agent field at fault (``tts.options.voice``, ``stt.engine``...).
        message: what is wrong.
    """

    field: str
    message: str


def choice_of(engine: str, option: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else an error naming the option.

    Raises:
        EngineError: naming the option, the value and what is allowed.
    """
    if value not in allowed:
        raise EngineError(
            f"{engine}: option {option!r} is {value!r}; known: {', '.join(allowed)}",
            kind="config",
        )
    return value


def validation_context() -> EngineContext:
    """The context engines are created with only to check their options: a placeholder key
    (a cloud engine refuses to be created without one), private URLs allowed."""
    return EngineContext(api_key=_VALIDATION_KEY, allow_private_urls=True)


def _registry(role: str) -> Registry[Any]:
    registries: dict[str, Registry[Any]] = {"stt": STT, "tts": TTS, "llm": LLM}
    return registries[role]


def validate_choice(
    role: str, engine: str, options: Mapping[str, Any], *, field: str | None = None
) -> ChoiceProblem | None:
    """Check one engine choice of a role (``stt``, ``tts``, ``llm``).

    Args:
        role: the role.
        engine: the engine's registered name.
        options: its options as written.
        field: the agent field it sits at (``tts``, ``tts.fallback.0``...); ``role``
            by default.

    Returns:
        None when valid, else the problem, with the offending option's field when the
        message names one.
    """
    where = field or role
    try:
        _registry(role).create(
            engine, options, EngineContext(api_key=_VALIDATION_KEY, allow_private_urls=True)
        )
    except EngineError as exc:
        message = str(exc)
        option = _named_option(message, options)
        if exc.kind == "config" and "no " + role in message:
            return ChoiceProblem(f"{where}.engine", message)
        return ChoiceProblem(f"{where}.options.{option}" if option else where, message)
    return None


def _named_option(message: str, options: Mapping[str, Any]) -> str | None:
    for key in options:
        if f"option {key!r}" in message or f"option(s) {key}" in message:
            return str(key)
    return None
