"""voicebus audit."""
