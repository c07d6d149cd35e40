"""voicebus gateway."""
