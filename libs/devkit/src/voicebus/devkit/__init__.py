"""voicebus devkit."""
