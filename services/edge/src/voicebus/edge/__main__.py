"""``python -m voicebus.edge``."""

from voicebus.edge.app import main

main()
