"""Errors of the recorder."""

from __future__ import annotations

from voicebus.runtime.errors import VoicebusError


class RecorderError(VoicebusError):
    """Root of the recorder's errors."""


class RecorderStoppingError(RecorderError):
    """A call arrived while this instance shuts down; another instance must take it."""


class RecordingClosedError(RecorderError):
    """Audio was added to a recording that is already finalized."""
