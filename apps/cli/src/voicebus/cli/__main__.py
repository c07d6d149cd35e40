"""``python -m voicebus.cli``."""

from voicebus.cli.main import main

main()
