"""Request/reply to re-encrypt stored secrets with the newest key (``voicebus keys rotate``).

Each service that keeps secrets encrypted at rest answers its own subject: it reads
every stored ciphertext with all of its configured keys and writes it back encrypted
with the first one. After every owner reported ``unreadable == 0``, the older keys
may be removed from the settings.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import Data
from voicebus.contracts.rpc import Reply

CREDENTIALS_ROTATE: Final = subjects.rpc("edge", "credentials", "rotate")
"""Re-encrypt tenants' provider credentials: request :class:`RotateKeys`, reply
:class:`KeysRotated`."""

TOOL_SECRETS_ROTATE: Final = subjects.rpc("orchestrator", "secrets", "rotate")
"""Re-encrypt webhook tools' secrets: request :class:`RotateKeys`, reply :class:`KeysRotated`."""

ROTATE_SUBJECTS: Final = {"edge": CREDENTIALS_ROTATE, "orchestrator": TOOL_SECRETS_ROTATE}
"""Every owner of encrypted secrets, by service."""


class RotateKeys(Data):
    """Request body of a ``...rotate`` subject."""

    dry_run: bool = Field(
        default=False,
        description="Only count what would be re-encrypted and what no key opens.",
        examples=[False],
    )


class KeysRotated(Reply):
    """What a rotation did."""

    rotated: int = Field(default=0, ge=0, description="Ciphertexts re-encrypted.", examples=[12])
    unreadable: int = Field(
        default=0,
        ge=0,
        description="Ciphertexts no configured key opens (left as they are).",
        examples=[0],
    )
    keys: int = Field(default=0, ge=0, description="Keys the service holds.", examples=[2])
