"""The ``voicebus agent`` command: validate, import and export agent files."""
