"""voicebus media."""
