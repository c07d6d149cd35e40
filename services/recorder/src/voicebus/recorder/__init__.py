"""voicebus recorder."""
