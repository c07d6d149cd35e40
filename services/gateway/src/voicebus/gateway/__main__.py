"""``python -m voicebus.gateway``."""

from voicebus.gateway.app import main

main()
