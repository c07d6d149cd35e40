"""Errors of the orchestrator."""

from __future__ import annotations

from pathlib import Path

from voicebus.runtime.errors import VoicebusError


class OrchestratorError(VoicebusError):
    """Root of the orchestrator's errors."""


class AgentConfigError(OrchestratorError):
    """An agent file is unusable; the message names the file and the field.

    Attributes:
        path: the agent file (or data file) at fault.
        field: dotted path of the field at fault (``tools.0.file``), or None.
    """

    def __init__(
        self, path: Path | str, problem: str, field: str | None = None, *, named: bool = False
    ) -> None:
        self.path = Path(path)
        self.field = field
        # ``named``: the problem text already names its field(s).
        where = f"{self.path}: {field}" if field and not named else str(self.path)
        super().__init__(f"{where}: {problem}")


class TemplateError(OrchestratorError):
    """A ``{{variable}}`` has no value."""


class SessionConflictError(OrchestratorError):
    """Another instance wrote the call's session: this instance no longer owns the call."""


class StoreConflictError(OrchestratorError):
    """A save the stored state forbids (exists, archived, not at the expected version).

    Attributes:
        code: machine-readable code for the 409 answer.
    """

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


class DocumentError(OrchestratorError):
    """A knowledge-base document cannot be read; the message says why (and where)."""
