"""Development defaults shared by the dev kit's commands (kept import-light for the CLI)."""

from __future__ import annotations

from typing import Final

DEV_TWILIO_AUTH_TOKEN: Final = "dev-secret"  # noqa: S105 - the gateway's development placeholder
"""The Twilio auth token the gateway accepts in development; refused in production."""
