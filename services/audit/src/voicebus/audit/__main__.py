"""``python -m voicebus.audit``."""

from voicebus.audit.app import main

main()
