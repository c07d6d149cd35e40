"""``python -m voicebus.recorder``."""

from voicebus.recorder.app import main

main()
