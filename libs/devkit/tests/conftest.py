"""Test helpers of the dev kit live next to the tests (``caller_fake_twilio``)."""

from __future__ import annotations

import sys
from pathlib import Path

# Test modules import ``caller_fake_twilio`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
