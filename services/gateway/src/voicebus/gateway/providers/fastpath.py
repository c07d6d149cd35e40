"""What the providers' fast message paths share: msgspec types and JSON string encoding."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

MarkName = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""A mark or checkpoint name echoed by a provider (ours: at most a few dozen characters)."""

_ENCODER: Final = msgspec.json.Encoder()


def json_string(text: str) -> bytes:
    """``text`` as a JSON string literal (quoted and escaped), for bytes templates."""
    return _ENCODER.encode(text)
