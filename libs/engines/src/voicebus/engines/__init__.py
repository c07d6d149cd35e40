"""voicebus engines: speech and language engines behind one interface per role."""
