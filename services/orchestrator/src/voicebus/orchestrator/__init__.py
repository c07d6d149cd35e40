"""voicebus orchestrator."""
