"""voicebus campaigns."""
