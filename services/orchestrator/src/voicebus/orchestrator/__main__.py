"""``python -m voicebus.orchestrator``."""

from voicebus.orchestrator.app import main

main()
