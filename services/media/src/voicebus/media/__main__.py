"""``python -m voicebus.media``."""

from voicebus.media.app import main

main()
