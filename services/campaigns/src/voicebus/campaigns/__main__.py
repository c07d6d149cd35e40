"""``python -m voicebus.campaigns``."""

from voicebus.campaigns.app import main

main()
