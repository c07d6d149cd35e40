"""``{{variable}}`` templates for prompts and greetings, and ``${VAR:-default}`` in options.

Both are pure: values and the environment are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from voicebus.orchestrator.errors import TemplateError

_VARIABLE: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_ENV: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def variables(template: str) -> set[str]:
    """Root names a template refers to: ``"Hi {{ name }} {{a.b}}"`` → ``{"name", "a"}``."""
    return {match.group(1) for match in _VARIABLE.finditer(template)}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render(template: str, values: Mapping[str, Any], *, strict: bool = True) -> str:
    """Fill every ``{{name}}`` (or ``{{name.field}}`` of a mapping) from ``values``.

    Args:
        template: the text.
        values: variable values (a tool's result may be a mapping).
        strict: a root name without a value raises; otherwise it renders empty
            (a flow variable not set on the path the call took).

    Raises:
        TemplateError: strict, and a name has no value (definitions declare every
            name their agent-level templates use, so this means a programming error).
    """

    def fill(match: re.Match[str]) -> str:
        name, path = match.group(1), match.group(2)
        if name not in values:
            if strict:
                raise TemplateError(f"no value for template variable {name!r}")
            return ""
        value: Any = values[name]
        for part in path.split(".")[1:]:
            value = value.get(part) if isinstance(value, Mapping) else None
        return _text(value)

    return _VARIABLE.sub(fill, template)


def expand_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string inside ``value``.

    Args:
        value: a string, or lists/dicts of them (other scalars are returned as is).
        environ: the environment to read.
        where: dotted path of ``value``, for error messages.

    Raises:
        TemplateError: ``${VAR}`` without a default and ``VAR`` is not set;
            the message starts with the dotted path of the field.
    """
    if isinstance(value, str):

        def fill(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise TemplateError(f"{where}: environment variable {name} is not set")

        return _ENV.sub(fill, value)
    if isinstance(value, Mapping):
        return {
            k: expand_env(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, environ, f"{where}.{i}") for i, v in enumerate(value)]
    return value
