"""voicebus runtime."""
