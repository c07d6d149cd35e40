"""Fixtures of the edge's tests; the helpers themselves live in ``edge_kit`` and ``edge_fakes``."""

from __future__ import annotations

import sys
from pathlib import Path

# Test modules import ``edge_kit`` and ``edge_fakes`` by name (pytest runs with
# --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))
