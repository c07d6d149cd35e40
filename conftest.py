"""Session-wide test settings that no single member owns."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_OWN_BASETEMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """As root, give this session its own temp root instead of the shared one.

    Embedded PostgreSQL runs as its own OS user when the tests run as root, so the
    parents of a stack's data directory must stay traversable by that user. Every
    pytest session resets the shared ``pytest-of-root`` directory to mode 0700 when
    it starts, which cut off the clusters of any session already running there.
    A directory of this session's own is never touched by another session.
    """
    if config.option.basetemp is not None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    own = Path(tempfile.mkdtemp(prefix="voicebus-pytest-"))
    config.option.basetemp = own
    config.stash[_OWN_BASETEMP] = own


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's own temp root (its servers have stopped by now)."""
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
