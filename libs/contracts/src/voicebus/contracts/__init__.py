"""voicebus contracts."""
